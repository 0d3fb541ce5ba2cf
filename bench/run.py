"""Benchmark: Engage vs DuckDB vs Polars on active users (windows 1/7/30, every day), weekly
cohort retention (offsets 0..12, calendar and rolling weeks), sessions per day (30-minute gap)
and a 3-step weekly funnel (7-day window), on the same in-memory Arrow event log.

    .venv/bin/python bench/run.py                 # 10M events, 1M users (make bench)
    .venv/bin/python bench/run.py --quick         # 1M events, 100k users
    .venv/bin/python bench/run.py --events 3000000 --variants int:time
    .venv/bin/python bench/run.py --metrics sessions,funnel

See bench/README.md for what is measured. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import datagen  # noqa: E402
import engines as E  # noqa: E402

TASKS = ("active_users", "retention", "retention_rolling", "sessions", "funnel")
TASK_TITLES = {"active_users": "active users, windows 1/7/30, every day",
               "retention": "weekly cohort retention, offsets 0..12 (calendar weeks)",
               "retention_rolling": "weekly cohort retention, offsets 0..12 (rolling 7x24 h)",
               "sessions": "sessions per UTC day (30-minute gap): sessions, users, total and "
                           "median duration",
               "funnel": "funnel view -> add_to_cart -> purchase, 7-day window, users per step "
                         "per week of entry"}
ENGINES = ("engage", "engage_1t", "duckdb", "polars")
TITLES = {"engage": "Engage (2 threads)", "engage_1t": "Engage (1 thread)",
          "duckdb": "DuckDB", "polars": "Polars"}


# --------------------------------------------------------------------------- engines

class Runner:
    """Runs one engine's tasks on a table; ``run(task)`` returns the engine's raw result."""

    def __init__(self, name: str, table, threads: int):
        self.name, self.table, self.threads = name, table, threads
        self.con = E.duckdb_connect(threads) if name.startswith("duckdb") else None

    def warm_up(self) -> None:
        """Import the engine's libraries (so their code is not counted as working memory)."""
        if self.name.startswith("engage"):
            import engage_core  # noqa: F401
        elif self.name == "polars":
            import polars  # noqa: F401

    def run(self, task: str):
        t = self.table
        if self.name.startswith("engage"):
            th = 1 if self.name == "engage_1t" else self.threads
            # the event column is read only by the metric that filters on event names
            prepare = E.engage_prepare_with_events if task == "funnel" else E.engage_prepare
            ev = prepare(t, threads=th)
            return getattr(E, "engage_" + task)(ev, threads=th)
        if self.name == "duckdb":
            return getattr(E, "duckdb_" + task)(self.con, t)
        if self.name == "polars":
            return getattr(E, "polars_" + task)(t)
        raise ValueError(self.name)


def canonical(task, result):
    return getattr(E, "canonical_" + task)(result)


def reference(task, table):
    return getattr(E, "reference_" + task)(table)


# --------------------------------------------------------------------------- memory (child)

def _status(field: str) -> float:
    """A /proc/self/status figure (kB) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def child(name: str, task: str, path: str, threads: int) -> None:
    """Load the Parquet log, reset the high-water mark, run one task once, report JSON."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    runner = Runner(name, table, threads)
    runner.warm_up()  # import the engine's libraries before the baseline
    loaded = _status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
        reset = True
    except OSError:
        reset = False
    t0 = time.perf_counter()
    runner.run(task)
    seconds = time.perf_counter() - t0
    print(json.dumps({"loaded_mb": loaded, "peak_mb": _status("VmHWM"), "hwm_reset": reset,
                      "seconds": seconds}))


def measure_memory(name: str, task: str, path: str, threads: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--task", task,
           "--data", path, "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- timing (parent)

def time_engines(table, names, tasks, repeats: int, threads: int, log, budget: float = 15.0):
    """Best-of-``repeats`` seconds per (engine, task). Repeats go round-robin over the
    engines, so that a burst of load from elsewhere hits them alike; a case stops repeating
    once it has taken ``budget`` seconds. Each engine's first result is checked against
    Engage's before its time counts (``None`` time and a message when it differs)."""
    runners = {name: Runner(name, table, threads) for name in names}
    cases = [(name, task) for name in names for task in tasks]
    best = {c: float("inf") for c in cases}
    spent = {c: 0.0 for c in cases}
    first = {}
    for _ in range(repeats):
        for case in cases:
            if spent[case] > budget:  # slow cases: fewer repeats keep the run short
                continue
            # let the previous engine's worker threads (DuckDB, Polars' rayon pool, OpenMP)
            # go idle, so no engine is timed while another one's threads still spin
            time.sleep(0.5)
            t0 = time.perf_counter()
            result = runners[case[0]].run(case[1])
            took = time.perf_counter() - t0
            best[case], spent[case] = min(best[case], took), spent[case] + took
            if case not in first:
                first[case] = canonical(case[1], result)
            del result
    times, errors = {}, {}
    for name, task in cases:
        reference = first[("engage", task)]
        if name == "engage" or E.same(first[(name, task)], reference):
            times[(name, task)] = best[(name, task)]
            log(f"  {TITLES[name]:24s} {task:17s} {best[(name, task)]:8.3f} s")
        else:
            times[(name, task)] = None
            errors[(name, task)] = E.first_difference(first[(name, task)], reference)
            log(f"  {TITLES[name]:24s} {task:17s} DIFFERS from Engage: {errors[(name, task)]}")
    return times, errors


def self_check(log, tasks=TASKS) -> list[str]:
    """Every engine against the pure-Python reference on small logs: one of each id kind
    (like the benchmark's logs), and coarse-grid logs full of ties, gaps of exactly 30
    minutes and step events exactly 7 days apart (``datagen.edge_cases``)."""
    problems = []
    logs = [(f"{ids} ids", datagen.generate(4000, 400, days=70, ids=ids, order=order))
            for ids, order in (("int", "time"), ("sparse", "shuffled"), ("uuid", "shuffled"))]
    logs += [(f"edge cases, seed {seed}, {grid} s grid", datagen.edge_cases(seed=seed, grid_s=grid))
             for seed in (1, 2, 3) for grid in (600, 1800, 3600)]
    for label, table in logs:
        ref = {task: reference(task, table) for task in tasks}
        for name in ENGINES:
            runner = Runner(name, table, 2)
            for task in tasks:
                got = canonical(task, runner.run(task))
                if not E.same(got, ref[task]):
                    problems.append(f"{TITLES[name]} {task} ({label}): "
                                    f"{E.first_difference(got, ref[task])}")
    log(f"self-check on {len(logs)} small logs against a pure-Python reference: "
        + ("all engines agree" if not problems else "; ".join(problems)))
    return problems


def rolling_ratio(table, repeats: int, threads: int) -> dict:
    """Engage's rolling over calendar weekly retention, the metric alone (best of
    ``repeats``, taken alternately), for 2 threads and 1 thread. Each call gets a freshly
    prepared log (untimed): the Events object caches per-user active days, so a second call
    on the same one would time a cache hit."""
    import engage_core as ec

    out = {}
    for th in (threads, 1):
        best = {}
        for _ in range(max(repeats, 3)):
            for window in ("calendar", "rolling"):
                ev = E.engage_prepare(table, threads=th)
                t0 = time.perf_counter()
                ec.retention(ev, period="week", max_offset=E.MAX_OFFSET, window=window, threads=th)
                best[window] = min(best.get(window, float("inf")), time.perf_counter() - t0)
                del ev
        out[th] = best
    return out


def engine_state() -> dict:
    """The commit of the repository and a fingerprint of engage_core's files (sources and
    built modules), so that results say which engine they measured and whether it changed
    during the run (the work tree may be shared)."""
    import hashlib

    def git(*a):
        r = subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT)
        return r.stdout.strip() if r.returncode == 0 else ""

    pkg = os.path.join(ROOT, "engage_core")
    h = hashlib.sha256()
    for name in sorted(os.listdir(pkg)):
        if name.endswith((".py", ".pyx", ".pxd", ".so")):
            with open(os.path.join(pkg, name), "rb") as f:
                h.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "engage_core").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": dirty,
            "fingerprint": h.hexdigest()[:12]}


# --------------------------------------------------------------------------- report

def versions() -> dict:
    import duckdb
    import numpy
    import polars
    import pyarrow

    import engage_core
    return {"engage_core": engage_core.__version__, "duckdb": duckdb.__version__,
            "polars": polars.__version__, "pyarrow": pyarrow.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table_rows(n_events, names, tasks, times, errors, memory):
    rows = []
    for task in tasks:
        base = times.get(("engage", task))
        for name in names:
            t = times.get((name, task))
            mem = memory.get((name, task), {})
            peak = mem.get("peak_mb")
            if t is None:
                cells = ["differs", "", ""]
            else:
                cells = [f"{t:.3f}", f"{n_events / t / 1e6:.1f} M",
                         f"{t / base:.1f}x" if base else ""]
            if peak is None:
                mem_cells = [mem.get("error", ""), ""]
            else:
                mem_cells = [f"{peak:.0f}", f"{peak - mem['loaded_mb']:.0f}"]
            rows.append([task, TITLES[name]] + cells + mem_cells)
    return rows


HEADER = ["task", "engine", "seconds", "events/s", "vs Engage", "peak RSS MB", "above loaded MB"]


def format_text(rows) -> str:
    widths = [max(len(str(r[i])) for r in [HEADER] + rows) for i in range(len(HEADER))]
    lines = ["  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)
                       for i, (v, w) in enumerate(zip(r, widths))) for r in [HEADER] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(rows) -> str:
    out = ["| " + " | ".join(HEADER) + " |",
           "|" + "|".join(["---", "---"] + ["---:"] * (len(HEADER) - 2)) + "|"]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- main

def run_variant(args, ids, order, log):
    import pyarrow.parquet as pq

    n_users = args.users or max(1, args.events // 10)
    path = datagen.cached(args.events, n_users, args.days, ids, order, args.seed, log=log)
    table = pq.read_table(path)
    names = list(ENGINES)
    tasks = args.tasks
    log(f"\n== {args.events:,} events, {n_users:,} users, {args.days} days, {ids} ids, "
        f"{order} order ({table.nbytes / 2**20:.0f} MB in Arrow) ==")
    log(f"timing, best of {args.repeats}:")
    times, errors = time_engines(table, names, tasks, args.repeats, args.threads, log)
    ratio = {}
    if "retention" in tasks and "retention_rolling" in tasks:
        for th, title in ((args.threads, "engage"), (1, "engage_1t")):
            cal, rol = times.get((title, "retention")), times.get((title, "retention_rolling"))
            if cal and rol:
                ratio[f"{TITLES[title]}, prepare_events + metric"] = (cal, rol)
        for th, best in rolling_ratio(table, args.repeats, args.threads).items():
            ratio[f"Engage ({th} thread{'s' if th > 1 else ''}), metric alone"] = (
                best["calendar"], best["rolling"])
        log("Engage weekly retention, rolling / calendar (issue 7 target: <= 1.5x):")
        for label, (cal, rol) in ratio.items():
            log(f"  {label:45s} {cal:7.3f} s -> {rol:7.3f} s  = {rol / cal:.2f}x")
    del table
    memory = {}
    if not args.no_memory:
        log("peak memory, one subprocess per engine and task:")
        for name in names:
            for task in tasks:
                memory[(name, task)] = m = measure_memory(name, task, path, args.threads)
                log(f"  {TITLES[name]:24s} {task:17s} "
                    + (f"{m['peak_mb']:7.0f} MB (data loaded: {m['loaded_mb']:.0f} MB)"
                       if "peak_mb" in m else m["error"]))
    rows = table_rows(args.events, names, tasks, times, errors, memory)
    log("\n" + format_text(rows))
    return {"ids": ids, "order": order, "events": args.events, "users": n_users,
            "rows": rows, "errors": errors, "memory": memory, "ratio": ratio}


class LoadSampler:
    """The 1-minute load average every few seconds while the benchmark runs."""

    def __init__(self, every: float = 5.0):
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every):
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return self.samples


def command_line(args) -> str:
    cmd = "bench/run.py" + (" --quick" if args.quick else f" --events {args.events}")
    if args.variants != DEFAULT_VARIANTS:
        cmd += f" --variants {args.variants}"
    if tuple(args.tasks) != TASKS:
        cmd += f" --metrics {','.join(args.tasks)}"
    return cmd


def write_results(path, args, results, problems, started, load, state) -> None:
    v = versions()
    lines = [
        "# Benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `{command_line(args)}`; "
        f"{os.cpu_count()} cores ({cpu_model()}), {args.threads} threads per engine; "
        f"load average (1 min) before/after: {load[0]:.2f} / {load[-1]:.2f}, during the run: "
        f"min {min(load):.2f}, mean {sum(load) / len(load):.2f}, max {max(load):.2f} "
        f"({len(load)} samples).",
        "",
        "Tasks: " + "; ".join(f"`{t}`: {TASK_TITLES[t]}" for t in args.tasks)
        + ". See bench/README.md for each engine's formulation.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"Engine: repository at commit {state['commit']}, engage_core files fingerprint "
        f"{state['fingerprint']}"
        + (f" (uncommitted changes in {', '.join(state['dirty'])})" if state["dirty"]
           else " (no uncommitted changes)")
        + (f"; **the engine's files changed during the run** (fingerprint after: "
           f"{state['after']})" if state["after"] != state["fingerprint"] else "") + ".",
        "",
        "Seconds are the best of " + str(args.repeats) + " runs, taken round-robin over the "
        "engines (fewer once a case has used 15 s), from the in-memory Arrow table "
        "to the result (Engage: `prepare_events` + the metric). `vs Engage` is the engine's "
        "time over Engage's (2 threads). Peak RSS is the process high-water mark (VmHWM) while "
        "one task runs once in its own subprocess, with the Arrow table and the engine's "
        "libraries already loaded (their RSS is included); `above loaded` is that peak minus "
        "the RSS just before the task, i.e. the engine's working memory. Every engine's result was checked equal to Engage's before its time "
        "counted; a small-log self-check compares all of them with a pure-Python reference.",
        "",
        "Self-check: " + ("all engines agree with the reference." if not problems
                          else "; ".join(problems)),
    ]
    if max(load) > (os.cpu_count() or 1):
        lines += ["", f"**Caution:** the load average ({max(load):.1f}) was above the number of "
                      "cores: other processes shared the CPU, so the seconds are inflated and "
                      "noisy (2-thread runs suffer most). Rerun on a quiet machine for figures "
                      "to quote."]
    for r in results:
        lines += ["", f"## {r['events']:,} events, {r['users']:,} users, {r['ids']} ids, "
                      f"{r['order']} order", "", format_markdown(r["rows"])]
        for (name, task), msg in r["errors"].items():
            lines.append(f"\n- {TITLES[name]} {task} differs from Engage: {msg}")
        if r.get("ratio"):
            lines += ["", "Engage weekly retention, rolling over calendar weeks (issue 7's "
                          "target: rolling within 1.5x of calendar):", ""]
            for label, (cal, rol) in r["ratio"].items():
                lines.append(f"- {label}: calendar {cal:.3f} s, rolling {rol:.3f} s, "
                             f"**{rol / cal:.2f}x**")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


DEFAULT_VARIANTS = "int:time,sparse:shuffled,uuid:shuffled"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Engage vs DuckDB vs Polars (see bench/README.md)")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--users", type=int, default=None, help="default: events / 10")
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--quick", action="store_true", help="1M events, 100k users")
    p.add_argument("--variants", default=DEFAULT_VARIANTS,
                   help="comma-separated ids:order pairs (ids: int|sparse|uuid; "
                        "order: time|shuffled)")
    p.add_argument("--metrics", default=",".join(TASKS),
                   help="comma-separated tasks to run (default: all): " + ", ".join(TASKS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="threads for every engine")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-memory", action="store_true", help="skip the subprocess memory runs")
    p.add_argument("--out", default=os.path.join(HERE, "results.md"))
    p.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--task", choices=TASKS, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.tasks = [a.task] if a.child else [t.strip() for t in a.metrics.split(",") if t.strip()]
    unknown = [t for t in a.tasks if t not in TASKS]
    if unknown or not a.tasks:
        p.error(f"--metrics: unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    a.tasks = [t for t in TASKS if t in a.tasks]  # report order
    if a.quick:
        a.events, a.users = 1_000_000, a.users or 100_000
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.task, args.data, args.threads)
        return 0
    os.environ.setdefault("POLARS_MAX_THREADS", str(args.threads))
    started = dt.datetime.now(dt.timezone.utc)
    sampler = LoadSampler()

    def log(msg):
        print(msg, flush=True)

    log(f"load average at start: {os.getloadavg()[0]:.2f}")
    state = engine_state()
    log(f"engine: commit {state['commit']}, engage_core fingerprint {state['fingerprint']}"
        + (f", uncommitted changes in {', '.join(state['dirty'])}" if state["dirty"] else ""))
    problems = self_check(log, args.tasks)
    results = []
    for variant in args.variants.split(","):
        ids, _, order = variant.partition(":")
        results.append(run_variant(args, ids, order or "time", log))
    load = sampler.stop()
    log(f"load average during the run: min {min(load):.2f}, mean {sum(load) / len(load):.2f}, "
        f"max {max(load):.2f}")
    state["after"] = engine_state()["fingerprint"]
    if state["after"] != state["fingerprint"]:
        log("CAUTION: engage_core's files changed during the run")
    write_results(args.out, args, results, problems, started, load, state)
    log(f"\nwrote {os.path.relpath(args.out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
