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
# The outage, logging and contract tests swap process-wide state (loggers, a dead database URL):
# they run on their own, one process, before the faults.
ISOLATED := tests/app/test_outages.py tests/app/test_observability.py tests/contract
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/faults $(ISOLATED:%=--ignore=%)
	$(BIN)/pytest $(ISOLATED)
	$(BIN)/pytest tests/faults

# Load, ceiling, invariants and faults on SQLite and PostgreSQL (see README, "Benchmarks");
# e.g. make benchmark BENCH_ARGS="--engine postgresql --workers 4 --faults"
BENCH_ARGS ?= --faults
# The OpenAPI contract: Schemathesis, every check, every role, 100 examples per operation and
# every phase (tests/contract runs the same with 1 example); e.g. CONTRACT_ARGS="--max-examples 500"
CONTRACT_ARGS ?=
# PostgreSQL at scale; e.g. SCALE_ARGS="--scale 10 --parts costs,plans" for a short run
SCALE_ARGS ?=
benchmark: setup
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.simulation
	$(BIN)/python -m benchmarks.contract $(CONTRACT_ARGS)
	$(BIN)/python -m benchmarks.scale_run $(SCALE_ARGS)
	$(BIN)/python -m benchmarks.audit_verify --engine sqlite
	$(BIN)/python -m benchmarks.audit_verify --engine postgresql

clean:
	rm -rf $(VENV) irt-demo.db* irt-demo.checkpoint* .pytest_cache .mypy_cache .ruff_cache .hypothesis
