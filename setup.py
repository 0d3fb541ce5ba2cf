"""Build the Cython kernels of engage_core.

Compiler directives are set once, here. ``ENGAGE_DEBUG=1`` turns bounds checking,
wrap-around and initialisation checks back on (and disables optimisation) for debugging.
"""
import glob
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ENGAGE_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
    "embedsignature": True,
}

if sys.platform == "win32":
    compile_args, link_args = ["/openmp", "/O2"], []
else:
    compile_args = ["-fopenmp", "-O0" if DEBUG else "-O3"]
    link_args = ["-fopenmp"]

# the C headers the kernels include: an edit to one rebuilds every kernel
HEADERS = sorted(glob.glob("engage_core/*.h") + glob.glob("engage_core/*.pxd"))

KERNELS = ["_ingest", "_columns", "_gather", "_bytes_index", "_activity", "_cohorts", "_retention", "_sequences", "_sessions", "_funnels", "_grouped"]

extensions = [
    Extension(
        f"engage_core.{name}",
        [f"engage_core/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        depends=HEADERS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for name in KERNELS
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, quiet=True))
