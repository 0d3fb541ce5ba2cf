"""What a benchmark run records about where it ran: versions, CPU, the engine's commit and
files, and the load average while it ran (the machine may be shared)."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def versions() -> dict:
    import importlib.metadata as md

    out = {}
    for dist in ("pyarrow", "numpy", "duckdb", "polars", "chdb", "pandas"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    out["python"] = platform.python_version()
    return out


def cpu_model() -> str:
    """The CPU's name, with its family and model and whether it has AVX-512 (a VM may name
    two CPU generations alike, e.g. "AMD EPYC": their figures are not comparable)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first CPU's fields are enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if "cpu family" in fields and "model" in fields:
        avx512 = "yes" if "avx512f" in fields.get("flags", "").split() else "no"
        name += f" (family {fields['cpu family']}, model {fields['model']}, AVX-512: {avx512})"
    return name


def engine_state() -> dict:
    """The commit of the repository and a fingerprint of engage_core's files (sources and
    built modules), so that results say which engine they measured and whether it changed
    during the run (the work tree may be shared)."""

    def git(*a):
        r = subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT)
        return r.stdout.rstrip() if r.returncode == 0 else ""  # (a status line opens with a space)

    pkg = os.path.join(ROOT, "engage_core")
    h = hashlib.sha256()
    for name in sorted(os.listdir(pkg)):
        if name.endswith((".py", ".pyx", ".pxd", ".so")):
            with open(os.path.join(pkg, name), "rb") as f:
                h.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "engage_core").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "dirty": dirty,
            "fingerprint": h.hexdigest()[:12]}


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

    def recent(self, n: int = 12) -> float:
        """Mean of the last ``n`` samples (about a minute)."""
        tail = self.samples[-n:]
        return sum(tail) / len(tail)

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return self.samples
