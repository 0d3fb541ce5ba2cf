"""Engage's engine: customer-engagement metrics over Apache Arrow.

Arrow in, Arrow out: :func:`prepare_events` turns an event log into dense arrays, and one
function per metric returns the metric's table (METRICS.md section 4) as a
``pyarrow.Table``. The heavy lifting happens in Cython kernels that release the GIL.
"""

import os

# Between parallel regions the kernels' OpenMP threads spin briefly, then sleep: never an
# endless spin that would steal the core another process of a shared Airflow worker needs
# (OMP_WAIT_POLICY=passive), but a bounded one (GOMP_SPINCOUNT, libgomp's iterations
# before sleeping: about a millisecond here), because a metric is a chain of short regions
# and a thread put to sleep after each one is slow to wake: measured on the benchmark VM,
# prepare + active users of 10M events took 57 ms with threads sleeping at once and 40 ms
# with the spin (some 15 ms more CPU time), when the process had been idle before.
# Set either variable yourself before importing engage_core to override.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("GOMP_SPINCOUNT", "100000")

from engage_core._memory import keep_freed_memory

# Large freed blocks stay in the process for reuse instead of going back to the kernel
# (engage_core/_memory.py: why, and ENGAGE_KEEP_MEMORY=0 to turn it off).
keep_freed_memory()

from engage_core._common import plan_user_order
from engage_core.activity import active_users, engagement_daily, stickiness
from engage_core.calendar import Calendar
from engage_core.cohorts import first_week, lifecycle
from engage_core.errors import ConfigError, EngageError, RunError, SchemaError
from engage_core.events import Events, local_days, prepare_events
from engage_core.retention import (retention, retention_brackets, retention_summary,
                                   retention_with_brackets)

from engage_core.commerce import cohort_revenue, commerce
from engage_core.conversions import conversion
from engage_core.funnels import funnel
from engage_core.scores import engagement_score, user_scores
from engage_core.sessions import sessions
from engage_core.survey import survey

__version__ = "0.1.0"

__all__ = [
    "Calendar", "ConfigError", "EngageError", "Events", "RunError", "SchemaError",
    "active_users", "engagement_daily", "first_week", "lifecycle", "local_days",
    "plan_user_order", "prepare_events", "retention", "retention_brackets", "retention_summary",
    "retention_with_brackets",
    "stickiness",
]
__all__ += [
    "cohort_revenue", "commerce", "conversion", "engagement_score", "funnel", "sessions",
    "survey", "user_scores",
]
