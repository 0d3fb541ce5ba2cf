"""bench/results.md, bench/results.png and the printed summary, from the measurements
run.py collects (one record per size x ids x mode x task x engine)."""

from __future__ import annotations

import datetime as dt
import os

import engines as E

SIZE_ORDER = {"S": 0, "M": 1, "L": 2}
HEADER = ["task", "engine", "seconds", "median", "runs", "events/s", "vs Engage",
          "peak RSS MB", "working MB", "check"]


def key(r) -> tuple:
    return (r["size"], r["ids"], r["order"], r["mode"], r["task"], r["engine"])


def counted(r) -> bool:
    """A time counts only when the result was checked equal to Engage's."""
    return r.get("equal") is True and r.get("best") is not None


def working(r):
    return r["peak_mb"] - r["baseline_mb"] if "peak_mb" in r else None


def progress_line(r) -> str:
    head = f"{r['size']} {r['ids']:6s} {r['mode']:7s} {r['task']:17s} {E.TITLES[r['engine']]:19s}"
    if "best" not in r:
        return f"{head} ERROR: {r.get('error', 'failed')}"
    return (f"{head} {r['best']:8.3f} s (median {r['median']:.3f}, n={r['n']}), peak RSS "
            f"{r['peak_mb']:.0f} MB, working {working(r):.0f} MB"
            + (f"  [{r['input_path']}]" if r.get("input_path") else ""))


def _sort_size(s):
    return (SIZE_ORDER.get(s, 9), s)


def groups(records) -> dict:
    """(size, ids, order, mode) -> {(task, engine): record}, with "all metrics" sums for the
    engines that have no single call (over E.SUM_TASKS; counted only if all of them are)."""
    out: dict = {}
    for r in records:
        out.setdefault((r["size"], r["ids"], r["order"], r["mode"]), {})[(r["task"], r["engine"])] = r
    for g in out.values():
        if not any(t == "all_metrics" for t, _ in g):
            continue
        for name in {e for _, e in g} - {"engage", "engage_1t"}:
            parts = [g.get((t, name)) for t in E.SUM_TASKS]
            if any(p is None for p in parts):
                continue
            ok = all(counted(p) for p in parts)
            s = {"engine": name, "task": "all_metrics", "sum_of": list(E.SUM_TASKS),
                 "events": parts[0]["events"], "equal": ok if ok else None,
                 "diff": "" if ok else "a summed task has no counted time"}
            if all("best" in p for p in parts):
                s.update(best=sum(p["best"] for p in parts), median=sum(p["median"] for p in parts),
                         n=min(p["n"] for p in parts),
                         peak_mb=max(p["peak_mb"] for p in parts), baseline_mb=max(
                             p["baseline_mb"] for p in parts))
                s["baseline_mb"] = s["peak_mb"] - max(working(p) for p in parts)
            g[("all_metrics", name)] = s
    return out


def rows_of(g) -> list[list[str]]:
    rows = []
    tasks = [t for t in E.ALL_TASKS if any(k[0] == t for k in g)]
    for task in tasks:
        base = g.get((task, "engage"))
        base_t = base["best"] if base and counted(base) else None
        for name in E.ENGINES:
            r = g.get((task, name))
            if r is None:
                continue
            label = E.TITLES[name] + (" (sum)" if r.get("sum_of") else "")
            if "best" not in r:
                err = r.get("error", r.get("diff", ""))[:80]
                rows.append([task, label] + [""] * 7 + ["error: " + err])
                continue
            ok = counted(r)
            check = "ok" if ok else ("**DIFFERS**" if r.get("equal") is False else "unchecked")
            sec = f"{r['best']:.3f}" if ok else f"~~{r['best']:.3f}~~"
            rows.append([task, label, sec, f"{r['median']:.3f}", str(r["n"]),
                         f"{r['events'] / r['best'] / 1e6:.1f} M",
                         f"{r['best'] / base_t:.2f}x" if ok and base_t else "",
                         f"{r['peak_mb']:.0f}", f"{working(r):.0f}", check])
    return rows


def markdown_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def text_table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)
                       for i, (v, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    return "\n".join(lines[:1] + ["  ".join("-" * w for w in widths)] + lines[1:])


def paired(one: dict) -> dict | None:
    """The 2-thread runs made in turn with an Engage 1-thread record's own runs (child.py
    --pair-threads), or None."""
    pair = one.get("pair")
    return pair if pair and pair.get("threads") == E.ENGINE_THREADS["engage"] else None


def thread_rows(gs) -> list[list[str]]:
    rows = []
    for (size, ids, order, mode), g in sorted(gs.items(), key=lambda kv: (_sort_size(kv[0][0]), kv[0][1:])):
        for task in E.ALL_TASKS:
            one, two = g.get((task, "engage_1t")), g.get((task, "engage"))
            if one and two and counted(one) and counted(two):
                pair = paired(one)
                rows.append([f"{size} {ids} {mode}", task, f"{one['best']:.3f}", f"{two['best']:.3f}",
                             f"{one['best'] / two['best']:.2f}x",
                             f"{pair['best']:.3f}" if pair else "-",
                             f"**{one['best'] / pair['best']:.2f}x**" if pair else "-"])
    return rows


def scaling_rows(records) -> list[list[str]]:
    """Nanoseconds per event for each size (counted times), per ids x mode x task x engine."""
    gs = groups(records)
    sizes = sorted({k[0] for k in gs}, key=_sort_size)
    if len(sizes) < 2:
        return []
    rows = []
    combos = sorted({(k[1], k[3], t, e) for k, g in gs.items() for (t, e) in g})
    for ids, mode, task, name in combos:
        per = []
        for s in sizes:
            g = next((g for k, g in gs.items() if k[0] == s and k[1] == ids and k[3] == mode), {})
            r = g.get((task, name))
            per.append(r["best"] / r["events"] * 1e9 if r and counted(r) else None)
        have = [p for p in per if p is not None]
        if len(have) < 2:
            continue
        rows.append([f"{ids} {mode}", f"{task}: {E.TITLES[name]}"]
                    + [f"{p:.0f}" if p is not None else "" for p in per]
                    + [f"{have[-1] / have[0]:.2f}"])
    return [sizes] + rows


def targets(gs) -> list[str]:
    """Issue 6's targets, checked on every size measured with int ids in memory."""
    out = []
    for (size, ids, order, mode), g in sorted(gs.items(), key=lambda kv: _sort_size(kv[0][0])):
        if ids != "int" or mode != "memory":
            continue

        def t(task, name):
            r = g.get((task, name))
            return r["best"] if r and counted(r) else None

        def ratio(task, other, want):
            a, b = t(task, other), t(task, "engage")
            if a is None or b is None:
                return f"{task} vs {E.TITLES[other]}: not measured"
            return (f"{task} vs {E.TITLES[other]}: {a / b:.2f}x (target >= {want}x) "
                    + ("met" if a / b >= want else "**not met**"))

        lines = [ratio("active_users", "duckdb", 10), ratio("active_users", "chdb", 4),
                 ratio("retention", "duckdb", 10), ratio("retention", "chdb", 3),
                 ratio("all_metrics", "duckdb", 5)]
        for task in E.ALL_TASKS:
            one, two = t(task, "engage_1t"), t(task, "engage")
            pair = paired(g[(task, "engage_1t")]) if one else None
            if one and pair:
                q = one / pair["best"]
                same = pair.get("identical")
                lines.append(f"{task} 1 -> 2 threads: {q:.2f}x in turn in one process (target "
                             f">= 1.7x; results " + ("identical" if same else "**differ**")
                             + ") " + ("met" if q >= 1.7 and same else "**not met**")
                             + (f"; {one / two:.2f}x between the two processes" if two else ""))
            elif one and two:
                lines.append(f"{task} 1 -> 2 threads: {one / two:.2f}x (target >= 1.7x) "
                             + ("met" if one / two >= 1.7 else "**not met**"))
            base = two
            for other_ids in ("sparse", "uuid"):
                og = gs.get((size, other_ids, "shuffled", mode), {})
                r = og.get((task, "engage"))
                if base and r and counted(r):
                    q = r["best"] / base
                    lines.append(f"{task} {other_ids} ids (shuffled) / int: {q:.2f}x (target "
                                 f"<= 2x) " + ("met" if q <= 2 else "**not met**"))
            e, d = g.get((task, "engage")), g.get((task, "duckdb"))
            if e and d and "peak_mb" in e and "peak_mb" in d:
                lines.append(f"{task} memory, working (peak RSS): Engage {working(e):.0f} MB "
                             f"({e['peak_mb']:.0f}) vs DuckDB {working(d):.0f} MB "
                             f"({d['peak_mb']:.0f}): "
                             + ("met" if working(e) <= working(d) else "**not met**"))
        out += [f"- **{size}, int ids, in memory**"] + ["  - " + x for x in lines]
    for (size, ids, order, mode), g in gs.items():
        rs = [r for (t, n), r in g.items() if n == "engage" and "peak_mb" in r]
        if mode != "parquet" or not rs or rs[0]["events"] < 50_000_000:
            continue
        out.append(f"- **{size} {ids} ids, streamed from Parquet** "
                   f"({rs[0].get('input_path', '?')}), Engage 2 threads, peak RSS (target < 1536 MB):")
        out += [f"  - {r['task']}: {r['peak_mb']:.0f} MB "
                + ("met" if r["peak_mb"] < 1536 else "**not met**") for r in rs]
    return out


def chart(path, records) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gs = groups(records)
    pick = [k for k in gs if k[1] == "int" and k[3] == "memory"] or list(gs)
    focus = sorted(pick, key=lambda k: (k[0] != "M", -SIZE_ORDER.get(k[0], -1)))[0]
    g = gs[focus]
    sizes = sorted({k[0] for k in gs if k[1] == focus[1] and k[3] == focus[3]}, key=_sort_size)
    scaling = len(sizes) > 1
    fig, axes = plt.subplots(1, 3 if scaling else 2, figsize=(21 if scaling else 15, 5.5),
                             gridspec_kw={"width_ratios": [3, 2, 2] if scaling else [3, 2]})
    ax1, ax2 = axes[0], axes[-1]
    tasks = [t for t in E.ALL_TASKS if any(k[0] == t for k in g)]
    names = [n for n in E.ENGINES if any(k[1] == n for k in g)]
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        ys = [g[(t, name)]["best"] if (t, name) in g and counted(g[(t, name)]) else 0 for t in tasks]
        ax1.bar([j + i * width for j in range(len(tasks))], ys, width, label=E.TITLES[name])
    ax1.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(tasks))])
    ax1.set_xticklabels([t.replace("_", " ") for t in tasks], rotation=15)
    ax1.set_yscale("log")
    ax1.set_ylabel("seconds (best run, log scale)")
    ax1.set_title(f"{focus[0]} log, {focus[1]} ids, {focus[3]} (lower is better; "
                  "others' all metrics = sum)")
    ax1.legend(fontsize=8)
    if scaling:
        def points(task, name):
            out = []
            for sz in sizes:
                r = next((gg for k, gg in gs.items() if k[0] == sz and k[1] == focus[1]
                          and k[3] == focus[3]), {}).get((task, name))
                if r and counted(r):
                    out.append((r["events"], r["best"]))
            return out

        # the task measured at the most (size, engine) points; all metrics on a tie
        task = max(tasks[::-1], key=lambda t: sum(len(points(t, n)) for n in names))
        for name in names:
            pts = points(task, name)
            if pts:
                ax2.plot([x for x, _ in pts], [y for _, y in pts], marker="o",
                         label=E.TITLES[name])
        ax2.set_xscale("log")
        ax2.set_yscale("log")
        ax2.set_xlabel("events")
        ax2.set_ylabel("seconds")
        ax2.set_title(f"scaling: {task.replace('_', ' ')}, {focus[1]} ids, {focus[3]}")
        ax2.legend(fontsize=8)
        ax2 = axes[1]
    task = "all_metrics" if any(k[0] == "all_metrics" for k in g) else tasks[0]
    kinds = [k for k in gs if k[0] == focus[0] and k[3] == focus[3]]
    kinds.sort(key=lambda k: ("int", "sparse", "uuid").index(k[1]))
    w = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        ys = [gs[k][(task, name)]["best"] if (task, name) in gs[k] and counted(gs[k][(task, name)])
              else 0 for k in kinds]
        ax2.bar([j + i * w for j in range(len(kinds))], ys, w, label=E.TITLES[name])
    ax2.set_xticks([j + w * (len(names) - 1) / 2 for j in range(len(kinds))])
    ax2.set_xticklabels([f"{k[1]} ids ({k[2]})" for k in kinds])
    ax2.set_ylabel("seconds")
    ax2.set_title(f"{task.replace('_', ' ')} by id kind, {focus[0]}, {focus[3]}")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(path, chart_path, meta, records, log) -> None:
    gs = groups(records)
    load = meta["load"]
    st = meta["state"]
    started = dt.datetime.fromisoformat(meta["started"])
    paths = sorted({r["input_path"] for r in records if r.get("input_path")})
    lines = [
        "# Benchmark results", "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `{meta['command'].strip()}`"
        + (" (merged with earlier measurements)" if "--merge" in meta["command"] else "")
        + f"; {meta['cores']} cores ({meta['cpu']}); load average (1 min) during the run: min "
        f"{min(load):.2f}, mean {sum(load) / len(load):.2f}, max {max(load):.2f} "
        f"({len(load)} samples)" + (
            "; when each measurement of the table finished: min {:.2f}, mean {:.2f}, max "
            "{:.2f}".format(min(rl), sum(rl) / len(rl), max(rl))
            if (rl := [r["load"] for r in records if "load" in r]) else "") + ".", "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".", "",
        f"Engine: repository at commit {st['commit']}, engage_core files fingerprint "
        f"{st['fingerprint']}" + (f" (uncommitted changes in {', '.join(st['dirty'])})"
                                  if st["dirty"] else " (no uncommitted changes)")
        + (f"; **engage_core's files changed during the run** (after: {st['after']})"
           if st["after"] != st["fingerprint"] else "") + ".", "",
        "## How", "",
        "Each measurement is its own process (bench/child.py): one engine, one task, one log, "
        "one input mode, so no engine's thread pools or allocator state touch another's. "
        f"A warm-up run, then up to {meta['repeats']} timed runs (fewer once they have taken "
        f"{meta['budget']:.0f} s; a warm-up slower than half that is the only run): `seconds` "
        "is the best, `median` the median. `in memory`: the log's columns are loaded from "
        "Parquet before the timing; `from Parquet`: reading the file is timed too (DuckDB "
        "`read_parquet`, Polars `read_parquet`, chDB `file(..., Parquet)`, pandas "
        "`pyarrow.parquet.read_table`, Engage: " + (", ".join(f"`{p}`" for p in paths) or
                                                    "record batches")
        + "). Engage times include `prepare_events`. Threads: Engage 1 and 2, DuckDB, Polars "
        "and chDB 2, pandas 1 (single-threaded). `vs Engage` = the engine's seconds / Engage's "
        "(2 threads). `peak RSS` = `VmHWM` of the process (its own peak; not `ru_maxrss`, "
        "which in a child starts at the parent's RSS at fork time) after the kernel's "
        "high-water mark was reset once the libraries were imported and (in memory) the log loaded: the "
        "peak during the first (warm-up) run, the work done once, including the loaded log "
        "(later runs in the same process can raise it: memory the allocators keep); `working` = that peak minus the RSS "
        "at the reset (the memory the task itself took).", "",
        "Every result is checked equal to Engage's (2 threads) before its time counts (a struck "
        "time and **DIFFERS** when not); Engage 1 thread too, and Engage's all-metrics tables "
        "for active users, weekly retention, sessions and the funnel against its single-task "
        "results. Before any timing a self-check compares every engine with a pure-Python "
        "reference on small logs: "
        + ("not run by this command (`--no-self-check`; run by the first command of a "
           "merged set)." if meta["problems"] is None else "all engines agree."
           if not meta["problems"] else "; ".join(meta["problems"])), "",
        "**All metrics** (`all_metrics`): the demo pipeline's families ("
        + ", ".join(meta["families"]) + ") through `engage_plugin.compute.prepare` + "
        "`compute_metrics`, one call; adapted to the bench logs: " + "; ".join(meta["adaptations"])
        + ". For the other engines it is the **sum** of their " + ", ".join(E.SUM_TASKS)
        + " times (the families they express here; the other families are not in their sum), "
        "peak RSS the largest of those runs.", "",
        "Tasks: " + "; ".join(f"`{t}`: {E.TASK_TITLES[t]}" for t in E.ALL_TASKS) + ".",
    ]
    if max(load) > (meta["cores"] or 1):
        lines += ["", f"**Caution:** the load average reached {max(load):.1f} on "
                      f"{meta['cores']} cores: other processes shared the CPU, so the seconds "
                      "are inflated and noisy, 2-thread runs most."]
    tl = targets(gs)
    if tl:
        lines += ["", "## Issue 6 targets", ""] + tl
    tr = thread_rows(gs)
    if tr:
        lines += ["", "## Engage, 1 -> 2 threads", "",
                  "Two measurements: the two processes of the table above (`Engage (1 "
                  "thread)`, `Engage (2 threads)`), run one after the other; and in the "
                  "1-thread process, each of its timed runs paired with a 2-thread run, the "
                  "two in turn, 0.2 s apart (`child.py --pair-threads`). On a shared machine the "
                  "neighbours' load moves from one minute to the next, and the two processes "
                  "can meet it at different moments; the runs in turn meet it alike, and the "
                  "targets read them.", "",
                  markdown_table(["log", "task", "1 thread s", "2 threads s (own process)",
                                  "speedup", "2 threads s (in turn)", "speedup (in turn)"], tr)]
        # the probe of the run that measured these rows (a merged run's own probe is
        # about its own measurements)
        own = [r["probe"] for r in records if r.get("engine") == "engage_1t" and r.get("probe")]
        probe = own[-1] if own else meta.get("probe")
        if probe:
            lines += ["", "What a second thread gave plain work on this machine at the start of "
                      + ("the run that measured these rows" if own else "the run")
                      + " (`bench/probe.py`: 1- and 2-thread runs alternating, best of 15; "
                      "a shared machine's figures move from one run to the next): "
                      + ", ".join(f"{k} **{v['speedup']:.2f}x**" for k, v in probe.items())
                      + ". Engage's kernels mostly stream over columns or read per-user state "
                      "at random: they scale about as those two do."]
    rr = []
    for (size, ids, order, mode), g in sorted(gs.items(), key=lambda kv: (_sort_size(kv[0][0]), kv[0][1:])):
        for name in ("engage", "engage_1t"):
            cal, rol = g.get(("retention", name)), g.get(("retention_rolling", name))
            if cal and rol and counted(cal) and counted(rol):
                rr.append([f"{size} {ids} {mode}", E.TITLES[name], f"{cal['best']:.3f}",
                           f"{rol['best']:.3f}", f"**{rol['best'] / cal['best']:.2f}x**"])
    if rr:
        lines += ["", "## Engage weekly retention, rolling / calendar (issue 7: <= 1.5x)", "",
                  "`prepare_events` included in both.", "",
                  markdown_table(["log", "engine", "calendar s", "rolling s", "ratio"], rr)]
    sc = scaling_rows(records)
    if sc:
        sizes, rows = sc[0], sc[1:]
        lines += ["", "## Scaling: nanoseconds per event", "",
                  "Linear time in the log size means a flat row (last column: largest size's "
                  "ns/event over the smallest's).", "",
                  markdown_table(["log", "task: engine"] + [f"{s} ns/event" for s in sizes]
                                 + ["ratio"], rows)]
    chart(chart_path, records)
    lines += ["", f"![chart]({os.path.basename(chart_path)})"]
    for k in sorted(gs, key=lambda k: (_sort_size(k[0]), ("int", "sparse", "uuid").index(k[1]), k[3])):
        size, ids, order, mode = k
        ev = next(iter(gs[k].values()))["events"]
        lines += ["", f"## {size}: {ev:,} events, {ids} ids, {order} order, "
                      f"{'in memory' if mode == 'memory' else 'from Parquet'}", "",
                  markdown_table(HEADER, rows_of(gs[k]))]
        for (task, name), r in gs[k].items():
            if r.get("equal") is False:
                lines.append(f"\n- {E.TITLES[name]} {task} differs from Engage: {r['diff']}")
        fam = gs[k].get(("all_metrics", "engage"), {}).get("families")
        if fam:
            lines.append("\nEngage all metrics (2 threads), seconds per step of the last run: "
                         + ", ".join(f"{f} {s:.3f}" for f, s in fam.items()))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    for k in sorted(gs, key=lambda k: (_sort_size(k[0]), k[1], k[3])):
        log(f"\n{k[0]} {k[1]} ids, {k[3]}:\n" + text_table(HEADER, rows_of(gs[k])))
    if tl:
        log("\nissue 6 targets:\n" + "\n".join(tl))
    if sc:
        log("\nns/event by size " + "/".join(sc[0]) + ":\n"
            + "\n".join(f"  {r[0]:15s} {r[1]:40s} " + " ".join(f"{x:>6s}" for x in r[2:])
                        for r in sc[1:]))
