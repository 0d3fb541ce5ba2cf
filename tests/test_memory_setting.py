"""engage_core keeps large freed blocks for reuse on glibc (engage_core/_memory.py), and
ENGAGE_KEEP_MEMORY=0 leaves the C library's default alone."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting applies to glibc only")

# RSS (MB) before and after freeing a 256 MB array that was written
PROBE = """
import numpy as np
import engage_core
from engage_core._memory import keep_freed_memory
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
a = np.ones(256 * 2**20 // 8)
before = rss()
del a
print(keep_freed_memory(), round(before - rss()))
"""


def _run(env_value):
    env = dict(os.environ)
    env.pop("ENGAGE_KEEP_MEMORY", None)
    if env_value is not None:
        env["ENGAGE_KEEP_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_memory_stays_in_the_process_for_reuse():
    applied, released = _run(None)
    assert applied
    assert released < 16  # the 256 MB stay mapped, ready for the next allocation


def test_engage_keep_memory_0_leaves_the_default():
    applied, released = _run("0")
    assert not applied
    assert released > 240  # glibc unmaps a freed block this large at once
