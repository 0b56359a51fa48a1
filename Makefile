# The README's two commands: `make demo` (set up and serve the IMC-002 demo) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

DEMO_ARGS ?=
demo: setup
	$(BIN)/irt demo $(DEMO_ARGS)

lint: setup
	$(BIN)/ruff check app tests migrations benchmarks
	$(BIN)/ruff format --check app tests migrations benchmarks
	$(BIN)/mypy

# Two pytest workers (pytest-xdist), each with its own template databases; tests/faults restarts
# PostgreSQL and kills processes, so it runs alone afterwards.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/faults
	$(BIN)/pytest tests/faults

# Load, ceiling, invariants and faults on SQLite and PostgreSQL (see README, "Benchmarks");
# e.g. make benchmark BENCH_ARGS="--engine postgresql --workers 4 --faults"
BENCH_ARGS ?= --faults
benchmark: setup
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.simulation

clean:
	rm -rf $(VENV) irt-demo.db* irt-demo.checkpoint* .pytest_cache .mypy_cache .ruff_cache .hypothesis
