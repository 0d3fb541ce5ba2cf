"""The pipeline's tables from the shards' partials: which combine rule each table takes
(:mod:`engage_plugin.spark.combine`), in the order ``compute_metrics`` returns them."""

from __future__ import annotations

from engage_plugin.spark import combine as cb
from engage_plugin.targets import PRIMARY_KEYS

#: table -> primary key (METRICS.md section 4)
KEYS = PRIMARY_KEYS

#: tables whose partials the plain rule of their name combines
SIMPLE = ("active_users", "engagement_daily", "stickiness", "lifecycle", "first_week",
          "funnel", "conversion", "survey")
#: family -> its first table, for the simple families
FAMILY = {"active_users": "active_users", "engagement_daily": "engagement_daily",
          "stickiness": "stickiness", "lifecycle": "lifecycle", "first_week": "first_week",
          "funnels": "funnel", "conversions": "conversion", "survey": "survey"}


def assemble(config, parts: dict) -> dict:
    """``table -> pa.Table`` for every enabled metric (rows sorted by primary key)."""
    m = config.metrics
    get = lambda name: parts.get(name, [])  # noqa: E731
    out = {}
    order = ["active_users", "engagement_daily", "stickiness", "retention", "lifecycle",
             "first_week", "sessions", "funnels", "conversions", "commerce", "cohort_revenue",
             "survey", "engagement_score"]
    for family in order:
        if family not in m:
            continue
        if family in FAMILY:
            name = FAMILY[family]
            out[name] = getattr(cb, name)(get(name), KEYS[name])
        elif family == "retention":
            info = cb._cohort_info(get("retention"))
            out["retention"] = cb.retention(get("retention"), KEYS["retention"], info)
            out["retention_summary"] = cb.summary(out["retention"])
            if m["retention"].brackets:
                out["retention_brackets"] = cb.retention_brackets(
                    get("retention_brackets"), KEYS["retention_brackets"], info)
        elif family == "sessions":
            out["sessions_daily"] = cb.sessions_daily(get("sessions_daily"),
                                                      get("sessions_durations"),
                                                      KEYS["sessions_daily"])
        elif family == "commerce":
            out["commerce"] = cb.commerce(get("commerce"), get("commerce_terms"), KEYS["commerce"])
        elif family == "cohort_revenue":
            out["cohort_revenue"] = cb.cohort_revenue(get("cohort_revenue"),
                                                      get("cohort_revenue_terms"),
                                                      KEYS["cohort_revenue"])
        elif family == "engagement_score":
            out["score_tiers"] = cb.score_tiers(get("score_tiers"), get("score_terms"),
                                                KEYS["score_tiers"])
            if m["engagement_score"].user_scores:
                out["user_scores"] = cb.user_scores(get("user_scores"))
    return out
