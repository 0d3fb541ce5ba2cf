"""Load and validate a pipeline YAML file (PIPELINE.md) into a frozen :class:`PipelineConfig`.

The file is read with ``yaml.SafeLoader`` only (:mod:`engage_plugin.yaml_tree`): the node
tree is composed first, so every error names ``file:line: key path: expected ..., found
...``. Relative paths (``source.path`` and ``duckdb:///`` file URIs) resolve against the
YAML file's directory.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import datetime as dt
import difflib
import os
import re
import zoneinfo
from typing import Any

from engage_core.errors import ConfigError
from engage_plugin.yaml_tree import REQUIRED, _Doc, _Phrase, read_yaml

NAME_RE = re.compile(r"^[a-z0-9_]+$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DURATION_RE = re.compile(r"^([0-9]+)\s*([smhd])$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PERIODS = ("day", "week", "month", "quarter")

#: metrics the engine computes in this version of the pipeline runner
AVAILABLE_METRICS = ("active_users", "engagement_daily", "stickiness", "retention",
                     "lifecycle", "first_week", "sessions", "funnels", "conversions", "commerce",
                     "cohort_revenue", "survey", "engagement_score")


# --- value checkers -----------------------------------------------------------------------

def _check_keys(doc: _Doc, keypath: tuple, value: dict, allowed) -> None:
    for key in value:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            where = ".".join(str(k) for k in keypath + (key,))
            raise ConfigError(f"{doc.path}:{doc.line(keypath + (key,))}: {where}: unknown key "
                              f"`{key}`{hint}; allowed: {', '.join(allowed)}")


def _mapping(doc, keypath, value, what="a mapping") -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(keypath, what, value)
    return value


def _str(doc, keypath, value, *, pattern=None, what="text", choices=None) -> str:
    if choices is not None:
        if value not in choices:
            raise doc.error(keypath, "one of " + "|".join(choices), value)
        return value
    if not isinstance(value, str) or not value.strip():
        raise doc.error(keypath, what, value)
    if pattern is not None and not pattern.match(value):
        raise doc.error(keypath, what, value)
    return value


def _ident(doc, keypath, value, *, dotted=False) -> str:
    what = "a safe SQL identifier ([A-Za-z_][A-Za-z0-9_]*" + (", optionally schema.name)"
                                                             if dotted else ")")
    if not isinstance(value, str):
        raise doc.error(keypath, what, value)
    parts = value.split(".") if dotted else [value]
    if len(parts) > 2 or not all(IDENT_RE.match(p) for p in parts):
        raise doc.error(keypath, what, value)
    return value


def _int(doc, keypath, value, *, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise doc.error(keypath, "a whole number" + (" > 0" if minimum == 1 else f" >= {minimum}"),
                        value)
    return value


def _number(doc, keypath, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.error(keypath, "a number", value)
    return float(value)


def _positive_ints(doc, keypath, value) -> tuple:
    if not isinstance(value, list) or not value:
        raise doc.error(keypath, "a non-empty list of whole numbers > 0", value)
    return tuple(_int(doc, keypath + (i,), v) for i, v in enumerate(value))


def _periods(doc, keypath, value) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise doc.error(keypath, "a list of " + "|".join(PERIODS), value)
    return tuple(_str(doc, keypath + (i,), v, choices=PERIODS) for i, v in enumerate(value))


def _events(doc, keypath, value, *, allow_none=True) -> tuple | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise doc.error(keypath, "a non-empty list of event names" +
                        (" or null" if allow_none else ""), value)
    return tuple(_str(doc, keypath + (i,), v, what="an event name") for i, v in enumerate(value))


def _event_or_none(doc, keypath, value):
    return None if value is None else _str(doc, keypath, value, what="an event name or null")


def _duration(doc, keypath, value) -> int:
    """``30m``, ``7d``, ``2h``, ``45s`` -> seconds."""
    m = DURATION_RE.match(value.strip()) if isinstance(value, str) else None
    if not m or int(m.group(1)) <= 0:
        raise doc.error(keypath, "a duration like 30m, 2h, 7d or 45s", value)
    return int(m.group(1)) * DURATION_UNITS[m.group(2)]


def _brackets(doc, keypath, value):
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise doc.error(keypath, "a list of [first, last] offset pairs", value)
    out = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, list) or len(pair) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in pair)
                or pair[0] > pair[1]):
            raise doc.error(keypath + (i,), "a pair [first, last] of offsets, 0 <= first <= last",
                            pair)
        out.append((pair[0], pair[1]))
    return tuple(out)


def _weights(doc, keypath, value):
    value = _mapping(doc, keypath, value, "a mapping of event name to number")
    return {str(k): _number(doc, keypath + (k,), v) for k, v in value.items()}


def _tiers(doc, keypath, value):
    if value is None:
        return None
    value = _mapping(doc, keypath, value, "a mapping of tier name to threshold")
    return {str(k): _number(doc, keypath + (k,), v) for k, v in value.items()}


def _bool(doc, keypath, value) -> bool:
    if not isinstance(value, bool):
        raise doc.error(keypath, "true or false", value)
    return value


def _window(doc, keypath, value):
    return _str(doc, keypath, value, choices=("calendar", "rolling"))


# --- metric specs: option -> (checker, default) ---------------------------------------------

_WEEK = ("week",)
METRIC_SPECS: dict[str, dict[str, tuple]] = {
    "active_users": {"windows": (_positive_ints, (1, 7, 30))},
    "engagement_daily": {"mau_window": (_int, 30)},
    "stickiness": {"periods": (_periods, _WEEK)},
    "retention": {"periods": (_periods, _WEEK), "max_offset": (lambda d, k, v: _int(d, k, v, minimum=0), 12),
                  "start_events": (_events, None), "return_events": (_events, None),
                  "window": (_window, "calendar"), "brackets": (_brackets, None)},
    "lifecycle": {"periods": (_periods, _WEEK)},
    "first_week": {},
    "sessions": {"session_gap": (_duration, 1800)},
    "funnels": {"steps": (lambda d, k, v: _events(d, k, v, allow_none=False), REQUIRED),
                "conversion_window": (_duration, 7 * 86400), "periods": (_periods, _WEEK)},
    "conversions": {"denominator": (lambda d, k, v: _events(d, k, v, allow_none=False), REQUIRED),
                    "numerator": (lambda d, k, v: _events(d, k, v, allow_none=False), REQUIRED),
                    "periods": (_periods, _WEEK)},
    "commerce": {"purchase_events": (_events, ("purchase",)), "periods": (_periods, ("month",))},
    "cohort_revenue": {"purchase_events": (_events, ("purchase",)),
                       "periods": (_periods, ("month",)),
                       "max_offset": (lambda d, k, v: _int(d, k, v, minimum=0), 12)},
    "survey": {"nps_event": (_event_or_none, "nps_response"),
               "csat_event": (_event_or_none, "csat_response"), "periods": (_periods, ("month",))},
    "engagement_score": {"weights": (_weights, {}), "default_weight": (_number, 1.0),
                         "tiers": (_tiers, None), "periods": (_periods, _WEEK),
                         "user_scores": (_bool, False)},
}
#: metrics whose value is a mapping of named entries (each entry holds the options)
NAMED_METRICS = ("funnels", "conversions")
COMMON_OPTIONS = {"events": (_events, None), "breakdown": (None, None)}


def _metric_class(name: str):
    fields = [(k, Any, dataclasses.field(default=None)) for k in METRIC_SPECS[name]]
    fields += [("events", Any, dataclasses.field(default=None)),
               ("breakdown", Any, dataclasses.field(default=None))]
    cls_name = "".join(p.title() for p in name.split("_")) + "Config"
    cls = dataclasses.make_dataclass(cls_name, fields, frozen=True)
    cls.__module__ = __name__
    return cls


METRIC_CLASSES = {name: _metric_class(name) for name in METRIC_SPECS}
globals().update({cls.__name__: cls for cls in METRIC_CLASSES.values()})


@dataclasses.dataclass(frozen=True)
class ColumnsConfig:
    user_id: str = "user_id"
    timestamp: str = "ts"
    event: str | None = "event"
    revenue: str | None = "revenue"
    score: str | None = "score"


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    conn_id: str | None = None
    uri: str | None = None
    path: str | None = None
    table: str | None = None
    query: str | None = None
    columns: ColumnsConfig = ColumnsConfig()


@dataclasses.dataclass(frozen=True)
class TargetConfig:
    conn_id: str | None = None
    uri: str | None = None
    schema: str | None = None
    table_prefix: str = "engage_"


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline: str
    source: SourceConfig
    target: TargetConfig
    metrics: dict  # metric name -> its *Config (funnels/conversions: name -> *Config)
    timezone: str = "UTC"
    week_start: str = "monday"
    engine: str = "local"
    schedule: Any = None
    start_date: Any = None
    catchup: Any = None
    path: str = ""  # the YAML file
    lines: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    # a copy restricted to some metrics (the Airflow per-family tasks) keeps the file's full
    # ``metrics`` here: the events store holds the columns every metric of the file reads
    store_metrics: dict | None = dataclasses.field(default=None, compare=False, repr=False)

    def line(self, *keypath) -> int:
        keypath = tuple(keypath)
        while keypath and keypath not in self.lines:
            keypath = keypath[:-1]
        return self.lines.get(keypath, 1)

    def where(self, *keypath) -> str:
        return f"{self.path}:{self.line(*keypath)}: {'.'.join(map(str, keypath))}"

    def breakdowns(self) -> list[str]:
        """Breakdown columns used by the metrics, in file order, each once."""
        out: list[str] = []
        for _, _, m in iter_metrics(self):
            if m.breakdown and m.breakdown not in out:
                out.append(m.breakdown)
        return out


def iter_metrics(config: PipelineConfig):
    """``(family, entry name or None, options)`` for every configured metric."""
    for family, value in config.metrics.items():
        if family in NAMED_METRICS:
            for name, options in value.items():
                yield family, name, options
        else:
            yield family, None, value


TOP_KEYS = ("pipeline", "schedule", "start_date", "catchup", "timezone", "week_start",
            "engine", "source", "target", "metrics")
SOURCE_KEYS = ("conn_id", "uri", "path", "table", "query", "columns")
COLUMN_KEYS = ("user_id", "timestamp", "event", "revenue", "score")
TARGET_KEYS = ("conn_id", "uri", "schema", "table_prefix")


def _resolve_duckdb(uri: str, base: str) -> str:
    if uri.startswith("duckdb:///"):
        rest = uri[len("duckdb:///"):]
        if rest and rest != ":memory:" and not os.path.isabs(rest):
            return "duckdb:///" + os.path.normpath(os.path.join(base, rest))
    return uri


def _uri(doc, keypath, value) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise doc.error(keypath, "a URL like duckdb:///file.duckdb", value)
    return value


def _exactly_one(doc, keypath, value, keys) -> str:
    given = [k for k in keys if value.get(k) is not None]
    if len(given) != 1:
        found = "none of them" if not given else "both " + " and ".join(given)
        given.sort(key=lambda k: doc.line(keypath + (k,)))
        raise doc.error(keypath + ((given[-1],) if given else ()),
                        "exactly one of " + " / ".join(keys), _Phrase(found))
    return given[0]


def _source(doc, raw, base) -> SourceConfig:
    kp = ("source",)
    if "source" not in raw:
        raise doc.error(kp, "a source mapping (conn_id, uri or path)")
    src = _mapping(doc, kp, raw["source"])
    _check_keys(doc, kp, src, SOURCE_KEYS)
    kind = _exactly_one(doc, kp, src, ("conn_id", "uri", "path"))
    out: dict[str, Any] = {}
    if kind == "path":
        path = _str(doc, kp + ("path",), src["path"], what="a file path or glob")
        if "://" not in path and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(base, path))
        out["path"] = path
        for k in ("table", "query"):
            if src.get(k) is not None:
                raise doc.error(kp + (k,), "no table/query with a path source", src[k])
    else:
        if kind == "uri":
            out["uri"] = _resolve_duckdb(_uri(doc, kp + ("uri",), src["uri"]), base)
        else:
            out["conn_id"] = _str(doc, kp + ("conn_id",), src["conn_id"], what="a connection id")
        which = _exactly_one(doc, kp, src, ("table", "query"))
        if which == "table":
            out["table"] = _ident(doc, kp + ("table",), src["table"], dotted=True)
        else:
            out["query"] = _str(doc, kp + ("query",), src["query"], what="an SQL query")
    cols = _mapping(doc, kp + ("columns",), src.get("columns"))
    _check_keys(doc, kp + ("columns",), cols, COLUMN_KEYS)
    columns = {}
    for role in COLUMN_KEYS:
        if role in cols:
            value = cols[role]
            if value is None and role in ("user_id", "timestamp"):
                raise doc.error(kp + ("columns", role), "a column name", value)
            columns[role] = None if value is None else _ident(doc, kp + ("columns", role), value)
    return SourceConfig(columns=ColumnsConfig(**columns), **out)


def _target(doc, raw, base) -> TargetConfig:
    kp = ("target",)
    tgt = _mapping(doc, kp, raw.get("target", {"uri": "duckdb:///engage.duckdb"}))
    _check_keys(doc, kp, tgt, TARGET_KEYS)
    kind = _exactly_one(doc, kp, tgt, ("conn_id", "uri"))
    out: dict[str, Any] = {}
    if kind == "uri":
        out["uri"] = _resolve_duckdb(_uri(doc, kp + ("uri",), tgt["uri"]), base)
    else:
        out["conn_id"] = _str(doc, kp + ("conn_id",), tgt["conn_id"], what="a connection id")
    if tgt.get("schema") is not None:
        out["schema"] = _ident(doc, kp + ("schema",), tgt["schema"])
    if "table_prefix" in tgt:
        prefix = tgt["table_prefix"]
        if prefix is None or prefix == "":
            prefix = ""
        elif not isinstance(prefix, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", prefix):
            raise doc.error(kp + ("table_prefix",), "a safe SQL identifier prefix like engage_",
                            prefix)
        out["table_prefix"] = prefix
    return TargetConfig(**out)


def _metric_options(doc, kp, family, value):
    spec = METRIC_SPECS[family]
    opts = _mapping(doc, kp, value)
    _check_keys(doc, kp, opts, tuple(spec) + tuple(COMMON_OPTIONS))
    out = {}
    for key, (check, default) in spec.items():
        if key in opts:
            out[key] = check(doc, kp + (key,), opts[key])
        elif default is REQUIRED:
            raise doc.error(kp + (key,), f"`{key}` (required)")
        else:
            out[key] = default
    out["events"] = _events(doc, kp + ("events",), opts.get("events"))
    if opts.get("breakdown") is not None:
        out["breakdown"] = _ident(doc, kp + ("breakdown",), opts["breakdown"])
    return METRIC_CLASSES[family](**out)


def _metrics(doc, raw) -> dict:
    kp = ("metrics",)
    if "metrics" not in raw:
        raise doc.error(kp, "a mapping of metrics (" + ", ".join(METRIC_SPECS) + ")")
    metrics = _mapping(doc, kp, raw["metrics"])
    if not metrics:
        raise doc.error(kp, "at least one metric", raw["metrics"])
    _check_keys(doc, kp, metrics, tuple(METRIC_SPECS))
    out = {}
    for family, value in metrics.items():
        if family in NAMED_METRICS:
            entries = _mapping(doc, kp + (family,), value, f"a mapping of name -> {family} options")
            if not entries:
                raise doc.error(kp + (family,), "at least one named entry", value)
            out[family] = {_ident(doc, kp + (family, name), name):
                           _metric_options(doc, kp + (family, name), family, opts)
                           for name, opts in entries.items()}
        else:
            out[family] = _metric_options(doc, kp + (family,), family, value)
    return out


def load_pipeline(path) -> PipelineConfig:
    """Read and check a pipeline file; raise :class:`ConfigError` naming file, line and key."""
    path = os.fspath(path)
    raw, doc = read_yaml(path)
    if not isinstance(raw, dict):
        raise doc.error((), "a mapping of pipeline keys", raw)
    _check_keys(doc, (), raw, TOP_KEYS)
    base = os.path.dirname(os.path.abspath(path))
    if "pipeline" not in raw:
        raise doc.error(("pipeline",), "a pipeline name matching [a-z0-9_]+")
    name = raw["pipeline"]
    name = _str(doc, ("pipeline",), name if isinstance(name, str) else name,
                pattern=NAME_RE, what="a pipeline name matching [a-z0-9_]+")
    tz = raw.get("timezone", "UTC")
    if not isinstance(tz, str):
        raise doc.error(("timezone",), "an IANA time zone name like America/New_York", tz)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise doc.error(("timezone",), "an IANA time zone name like America/New_York", tz) \
            from None
    week_start = _str(doc, ("week_start",), raw.get("week_start", "monday"),
                      choices=("monday", "sunday"))
    engine = _str(doc, ("engine",), raw.get("engine", "local"), choices=("local", "spark"))
    if raw.get("catchup") is not None:
        _bool(doc, ("catchup",), raw["catchup"])
    if raw.get("schedule") is not None and not isinstance(raw["schedule"], str):
        raise doc.error(("schedule",), "a cron expression or preset like @daily", raw["schedule"])
    start_date = raw.get("start_date")
    if start_date is not None and not isinstance(start_date, (dt.date, dt.datetime)):
        raise doc.error(("start_date",), "a date like 2025-01-01", start_date)
    return PipelineConfig(
        pipeline=name, source=_source(doc, raw, base), target=_target(doc, raw, base),
        metrics=_metrics(doc, raw), timezone=tz, week_start=week_start, engine=engine,
        schedule=raw.get("schedule"), start_date=start_date, catchup=raw.get("catchup"),
        path=os.path.abspath(path), lines=dict(doc.lines))


def check_available(config: PipelineConfig) -> None:
    """Raise :class:`ConfigError` for what the file accepts but this version cannot run."""
    if config.engine == "spark" and importlib.util.find_spec("pyspark") is None:
        raise ConfigError(f"{config.where('engine')}: engine `spark` needs pyspark "
                          "(pip install 'airflow-provider-engage[spark]'; docs/spark.md); found none")
    for family, name, opts in iter_metrics(config):
        keypath = ("metrics", family) + ((name,) if name else ())
        if family not in AVAILABLE_METRICS:
            raise ConfigError(f"{config.where(*keypath)}: metric `{family}` is not available "
                              f"in this version (available: {', '.join(AVAILABLE_METRICS)})")
        if family == "retention" and opts.window == "rolling" and "quarter" in opts.periods:
            raise ConfigError(f"{config.where(*keypath, 'window')}: rolling retention needs "
                              "periods day, week or month (a quarter has no fixed length)")
