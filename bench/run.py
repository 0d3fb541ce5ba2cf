"""Benchmark: Engage vs DuckDB, Polars, chDB and pandas, each engine in its own process, on
synthetic event logs of 1M, 10M and 50M events (S, M, L) with integer, sparse 64-bit and
UUID-string user ids, the data in memory or read from Parquet.

    .venv/bin/python bench/run.py                          # everything (make bench): long
    .venv/bin/python bench/run.py --quick                  # S, int ids: a couple of minutes
    .venv/bin/python bench/run.py --sizes M --modes memory # M, every id kind, in memory
    .venv/bin/python bench/run.py --sizes S,M --tasks active_users,retention --engines engage,duckdb

Each (size, ids, mode, task, engine) runs in a fresh subprocess (bench/child.py); every
engine's result is checked equal to Engage's before its time counts. Writes
bench/results.md and bench/results.png (report.py); see bench/README.md. A benchmark, not
a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [p for p in (HERE, ROOT) if p not in sys.path]

import datagen  # noqa: E402
import engines as E  # noqa: E402
import report  # noqa: E402
import sysinfo  # noqa: E402

SIZES = {"S": 1_000_000, "M": 10_000_000, "L": 50_000_000}
DEFAULT_VARIANTS = "int:time,sparse:shuffled,uuid:shuffled"
RESULTS_JSON = os.path.join(datagen.DATA_DIR, "results.json")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Engage vs DuckDB, Polars, chDB, pandas "
                                            "(see bench/README.md)")
    p.add_argument("--sizes", default="S,M,L", help="comma-separated: S (1M events), M (10M), "
                   "L (50M), or a number of events")
    p.add_argument("--ids", default=None, help="comma-separated id kinds: int, sparse, uuid "
                   "(int logs are time-ordered, the others shuffled; --variants to choose)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated ids:order")
    p.add_argument("--modes", default="memory,parquet",
                   help="memory (log loaded before the timing) and/or parquet (read inside it)")
    p.add_argument("--tasks", "--metrics", dest="tasks", default=",".join(E.ALL_TASKS),
                   help="comma-separated: " + ", ".join(E.ALL_TASKS))
    p.add_argument("--engines", default=",".join(E.ENGINES),
                   help="comma-separated: " + ", ".join(E.ENGINES) + " (Engage always runs: "
                        "it is the reference every result is checked against)")
    p.add_argument("--quick", action="store_true", help="S only, int ids only")
    p.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds of timed runs per measurement before it stops repeating")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--engage-parquet", choices=("stream", "table"), default="stream",
                   help="Engage from Parquet: stream record batches (default) or read the "
                        "whole table first")
    p.add_argument("--no-self-check", action="store_true")
    p.add_argument("--merge", action="store_true", help="keep the previous run's measurements "
                   f"({os.path.relpath(RESULTS_JSON, ROOT)}) that this run does not redo")
    p.add_argument("--report-only", action="store_true", help="rewrite results.md and the "
                   f"chart from {os.path.relpath(RESULTS_JSON, ROOT)} without measuring")
    p.add_argument("--out", default=os.path.join(HERE, "results.md"))
    p.add_argument("--chart", default=os.path.join(HERE, "results.png"))
    a = p.parse_args(argv)
    if a.quick:
        a.sizes, a.variants = "S", "int:time"
    if a.ids:
        order = {"int": "time", "sparse": "shuffled", "uuid": "shuffled"}
        a.variants = ",".join(f"{k}:{order[k]}" for k in a.ids.split(","))
    a.size_list = []
    for s in a.sizes.split(","):
        s = s.strip().upper()
        a.size_list.append((s, SIZES[s]) if s in SIZES else (f"{int(s):,}", int(s)))
    a.variant_list = [tuple((v + ":time").split(":")[:2]) for v in a.variants.split(",")]
    a.mode_list = [m for m in a.modes.split(",") if m]
    a.task_list = [t for t in E.ALL_TASKS if t in a.tasks.split(",")]
    engines = a.engines.split(",")
    a.engine_list = [e for e in E.ENGINES if e in engines or e == "engage"]
    bad = ([t for t in a.tasks.split(",") if t not in E.ALL_TASKS]
           + [e for e in engines if e not in E.ENGINES]
           + [m for m in a.mode_list if m not in ("memory", "parquet")]
           + [k for k, o in a.variant_list if k not in datagen.ID_KINDS or o not in datagen.ORDERS])
    if bad:
        p.error(f"unknown: {', '.join(bad)}")
    return a


def ensure_log(n_events, n_users, days, ids, order, seed, log) -> str:
    """The cached Parquet log, generated first if missing (in a subprocess, so that the
    parent stays small while children are measured)."""
    path = datagen.cached_path(n_events, n_users, days, ids, order, seed)
    if not os.path.exists(path):
        log(f"  generating {os.path.basename(path)} (a minute or more for 10M+ events) ...")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(HERE, "datagen.py"), "--events",
                        str(n_events), "--users", str(n_users), "--days", str(days), "--ids",
                        ids, "--order", order, "--seed", str(seed)], check=True,
                       stdout=subprocess.DEVNULL)
        log(f"  generated in {time.perf_counter() - t0:.0f} s")
    return path


def spawn(a, name, task, path, mode, outdir) -> dict:
    threads = E.ENGINE_THREADS[name]
    out = os.path.join(outdir, f"{name}_{task}_{mode}.npz")
    cmd = [sys.executable, os.path.join(HERE, "child.py"), "--engine", name, "--task", task,
           "--data", path, "--mode", mode, "--threads", str(threads), "--repeats",
           str(a.repeats), "--budget", str(a.budget), "--engage-parquet", a.engage_parquet,
           "--out", out]
    if name == "engage_1t":  # 1 -> 2 threads also measured in one process, runs in turn
        cmd[-2:-2] = ["--pair-threads", str(E.ENGINE_THREADS["engage"])]
    env = dict(os.environ, ENGAGE_THREADS=str(threads), POLARS_MAX_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {a.timeout:.0f} s"}
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        err = (r.stderr or "").strip().splitlines()
        return {"error": (err[-1] if err else f"exit status {r.returncode}")[:300]}
    return json.loads(lines[-1])


def run_probe(log) -> dict | None:
    """bench/probe.py in its own process: what a second thread gives plain streaming,
    random reads and in-cache compute on this machine now (None if it failed)."""
    r = subprocess.run([sys.executable, os.path.join(HERE, "probe.py"), "--json", "--repeats",
                        "15"], capture_output=True, text=True, cwd=ROOT)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        log(f"machine probe failed: {(r.stderr or '').strip().splitlines()[-1:]}")
        return None
    out = json.loads(lines[-1])
    log("machine, 1 -> 2 threads: " + ", ".join(f"{k} {v['speedup']:.2f}x" for k, v in out.items()))
    return out


def load_npz(path):
    import numpy as np

    with np.load(path) as z:
        keys = sorted(z.files, key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1])))
        out = {}
        for k in keys:
            out.setdefault(k.rsplit("_", 1)[0], []).append(z[k])
    return {k: tuple(v) for k, v in out.items()}


def check(group: list[dict], log) -> None:
    """Every result of one (size, ids, mode) against Engage's (2 threads) for its task; an
    all-metrics run's tables against Engage's single-task results where there are some."""
    ref = {}
    for r in group:
        if r["engine"] == "engage" and r["task"] != "all_metrics" and "out" in r:
            ref[r["task"]] = load_npz(r["out"])[r["task"]]
    for r in group:
        if "out" not in r:
            r["equal"], r["diff"] = None, r.get("error", "failed")
            continue
        got = load_npz(r["out"])
        diffs = []
        for task, arrays in got.items():
            if r["engine"] == "engage" and task == r["task"]:
                continue
            if task not in ref:
                continue
            if not E.same(arrays, ref[task]):
                diffs.append(f"{task}: {E.first_difference(arrays, ref[task])}")
        checked = any(t in ref for t in got) or r["engine"] == "engage"
        r["equal"] = (not diffs) if checked else None
        r["diff"] = "; ".join(diffs)
        if diffs:
            log(f"  !!! MISMATCH: {E.TITLES[r['engine']]} {r['task']} differs from Engage's "
                f"result; its time does not count: {r['diff']}")
        os.remove(r["out"])
        del r["out"]


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.report_only:
        with open(RESULTS_JSON) as f:
            saved = json.load(f)
        report.write(a.out, a.chart, saved["meta"], saved["records"], print)
        return 0
    started = dt.datetime.now(dt.timezone.utc)
    sampler = sysinfo.LoadSampler()
    t_start = time.perf_counter()

    def log(msg):
        print(msg, flush=True)

    state = sysinfo.engine_state()
    log(f"load average at start: {os.getloadavg()[0]:.2f}; engine: commit {state['commit']}, "
        f"engage_core fingerprint {state['fingerprint']}"
        + (f", uncommitted changes in {', '.join(state['dirty'])}" if state["dirty"] else ""))
    problems = [] if a.no_self_check else __import__("selfcheck").self_check(
        a.engine_list, a.task_list, log)
    probe = run_probe(log)
    plan = [(s, v, m, t, e) for s in a.size_list for v in a.variant_list for m in a.mode_list
            for t in a.task_list for e in a.engine_list if E.applies(e, t, v[0])]
    log(f"{len(plan)} measurements, each in its own process: sizes "
        f"{', '.join(s for s, _ in a.size_list)}; ids {', '.join(':'.join(v) for v in a.variant_list)}; "
        f"modes {', '.join(a.mode_list)}; tasks {', '.join(a.task_list)}")
    records, done = [], 0
    with tempfile.TemporaryDirectory(prefix="engage-bench-") as outdir:
        for (size, n_events) in a.size_list:
            n_users = max(1, n_events // 10)
            for ids, order in a.variant_list:
                log(f"\n== {size}: {n_events:,} events, {n_users:,} users, {ids} ids, {order} "
                    f"order ==")
                path = ensure_log(n_events, n_users, a.days, ids, order, a.seed, log)
                for mode in a.mode_list:
                    group = []
                    for task in a.task_list:
                        for name in a.engine_list:
                            if not E.applies(name, task, ids):
                                continue
                            r = spawn(a, name, task, path, mode, outdir)
                            r.update(size=size, events=n_events, users=n_users, ids=ids,
                                     order=order, mode=mode, task=task, engine=name,
                                     threads=E.ENGINE_THREADS[name],
                                     load=os.getloadavg()[0], probe=probe)
                            group.append(r)
                            done += 1
                            log(f"  [{done}/{len(plan)} {time.perf_counter() - t_start:6.0f} s] "
                                + report.progress_line(r))
                    check(group, log)
                    records += group
    load = sampler.stop()
    if a.merge and os.path.exists(RESULTS_JSON):
        with open(RESULTS_JSON) as f:
            old = json.load(f)["records"]
        keys = {report.key(r) for r in records}
        records = [r for r in old if report.key(r) not in keys] + records
    state["after"] = sysinfo.engine_state()["fingerprint"]
    meta = {"started": started.isoformat(), "command": "bench/run.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "load": load, "state": state,
        "versions": sysinfo.versions(), "cpu": sysinfo.cpu_model(), "cores": os.cpu_count(),
        "problems": None if a.no_self_check else problems, "repeats": a.repeats, "budget": a.budget,
        "engage_parquet": a.engage_parquet, "families": E.pipeline_families(), "probe": probe,
        "adaptations": list(E.ADAPTATIONS)}
    os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
    with open(RESULTS_JSON, "w") as f:
        json.dump({"meta": meta, "records": records}, f)
    report.write(a.out, a.chart, meta, records, log)
    log(f"load average during the run: min {min(load):.2f}, mean {sum(load) / len(load):.2f}, "
        f"max {max(load):.2f}")
    if state["after"] != state["fingerprint"]:
        log("CAUTION: engage_core's files changed during the run")
    log(f"wrote {os.path.relpath(a.out, ROOT)}, {os.path.relpath(a.chart, ROOT)} and "
        f"{os.path.relpath(RESULTS_JSON, ROOT)} in {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
