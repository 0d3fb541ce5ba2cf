# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.engage-installed
PYX     = $(wildcard engage_core/*.pyx engage_core/*.pxd engage_core/*.h)
SO_STAMP = build/.kernels-built

.PHONY: demo test build bench clean distclean env

env: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "setuptools>=77" wheel "Cython>=3.0.10,<4" "numpy>=1.26"
	$(BIN)/python -m pip install -q --no-build-isolation -e '.[test,airflow]'
	@touch $(STAMP)
	@mkdir -p build && touch $(SO_STAMP)  # the editable install built the kernels in place

# A fresh environment's install builds the kernels and marks them built; make still
# remakes this stamp in that run (it saw the stamp missing before), so the recipe looks
# again and builds only when a source is newer than the stamp
$(SO_STAMP): $(PYX) setup.py | $(STAMP)
	@if [ -f $@ ] && [ -z "$$(find $(PYX) setup.py -newer $@)" ]; then \
	    echo "kernels already built by the install"; \
	else $(BIN)/python setup.py -q build_ext --inplace -j 2; fi
	@mkdir -p build && touch $(SO_STAMP)

build: $(SO_STAMP)

demo: build
	$(BIN)/engage demo --dir demo_out
	$(BIN)/python -m engage_plugin.airflow_demo --dir demo_out

test: build
	$(BIN)/python -m pytest -q

# make bench: S/M/L logs x int/sparse/UUID ids x in memory/from Parquet, every engine in its
# own process (hours on 2 cores); a part of it: make bench BENCH_ARGS="--sizes S,M" or
# BENCH_ARGS="--quick" (bench/README.md lists the options)
BENCH_ARGS ?=
bench: build
	$(BIN)/python -c "import chdb, polars, pandas, matplotlib" 2>/dev/null || \
		$(BIN)/python -m pip install -q -e '.[bench]' --no-build-isolation
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build engage_core/*.so engage_core/_*.c demo_out .pytest_cache

distclean: clean
	rm -rf $(VENV)
