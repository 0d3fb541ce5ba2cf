"""The self-check before any timing: every engine on small logs (one of each id kind, and
coarse-grid logs full of ties, gaps of exactly 30 minutes and step events exactly 7 days
apart: ``datagen.edge_cases``) against the pure-Python reference (reference.py); Engage's
"all metrics" call too, for the tables that match a task."""

from __future__ import annotations

import datagen
import engines as E


def small_logs():
    logs = [(f"{ids} ids", ids, datagen.generate(4000, 400, days=70, ids=ids, order=order))
            for ids, order in (("int", "time"), ("sparse", "shuffled"), ("uuid", "shuffled"))]
    logs += [(f"edge cases, seed {seed}, {grid} s grid", "int",
              datagen.edge_cases(seed=seed, grid_s=grid))
             for seed in (1, 2, 3) for grid in (600, 1800, 3600)]
    return logs


def self_check(engines, tasks, log) -> list[str]:
    problems = []
    logs = small_logs()
    config = E.pipeline_config() if "all_metrics" in tasks else None
    for label, ids, table in logs:
        single = [t for t in tasks if t != "all_metrics"]
        ref = {task: E.reference(task, table) for task in set(single) | (
            set(E.SUM_TASKS) if config else set())}
        for name in engines:
            run = E.runner(name, E.ENGINE_THREADS[name])
            for task in single:
                if not E.applies(name, task, ids):
                    continue
                try:
                    got = E.canonical(task, run(task, table))
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    problems.append(f"{E.TITLES[name]} {task} ({label}): {exc!r:.200}")
                    continue
                if not E.same(got, ref[task]):
                    problems.append(f"{E.TITLES[name]} {task} ({label}): "
                                    f"{E.first_difference(got, ref[task])}")
        if config:
            parts = E.all_metrics_parts(E.engage_all_metrics(E.add_numeric(table), config))
            for task, tab in parts.items():
                got = E.canonical(task, tab)
                if not E.same(got, ref[task]):
                    problems.append(f"Engage all metrics, {task} ({label}): "
                                    f"{E.first_difference(got, ref[task])}")
    log(f"self-check on {len(logs)} small logs against a pure-Python reference: "
        + ("all engines agree" if not problems else "PROBLEMS: " + "; ".join(problems)))
    return problems
