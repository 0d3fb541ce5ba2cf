"""Engage: one Airflow DAG per pipeline YAML file.

The pipelines folder is ``ENGAGE_PIPELINES_DIR``, else the Airflow Variable
``engage_pipelines_dir``, else ``pipelines/`` beside this file. A bad YAML file shows up in
Airflow's import errors for this file (naming the YAML file and key); the other pipelines'
DAGs still load. See docs/airflow.md.
"""

from __future__ import annotations

import os

from engage_plugin.dag_factory import load_pipeline_dags, pipelines_dir

# The words "airflow" and "DAG" let Airflow's safe-mode file discovery pick this file up.
_FOLDER = pipelines_dir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pipelines"))

globals().update(load_pipeline_dags(_FOLDER))
