# quantlib: two commands on a fresh machine (only Python 3.11 and make needed).
#   make report   set up .venv, then run the report pipeline on the bundled (synthetic) data
#   make test     set up .venv, then run the whole test suite, notebooks included
#   make lab      set up .venv, then open JupyterLab on the `quantlib` kernel
#   make test-stress  `make test` while two CPU-bound processes compete (tools/stress.sh)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup report test test-stress lab bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name quantlib --display-name "quantlib"
	@touch $(STAMP)

setup: $(STAMP)

report: setup
	$(BIN)/quantlib report

test: setup
	$(BIN)/python -m pytest tests notebooks quantlib --doctest-modules --nbval-lax -p no:cacheprovider $(PYTEST_ARGS)

# The same suite as `make test`, on a busy machine: two CPU-bound processes compete for the
# cores; tools/stress.sh stops them however the run ends (also on failure or Ctrl-C).
test-stress: setup
	tools/stress.sh $(MAKE) --no-print-directory test

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

bench: setup
	@# backtesting.py is the comparison baseline of bench_grid.py: benchmark-only, never a runtime dependency
	$(BIN)/python -m pip install -q backtesting
	@# bench_backtest.py also runs bench_grid.py, so one command prints the whole backtest table
	@for script in bench_data bench_backtest bench_regime bench_optimize bench_mtf bench_perp bench_perp_data bench_ml bench_live bench_report bench_startup; do \
		echo "== benchmarks/$$script.py"; $(BIN)/python benchmarks/$$script.py || exit 1; done

lint: setup
	$(BIN)/ruff check quantlib tests benchmarks

clean:
	rm -rf $(VENV) reports/*/ .pytest_cache
