# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint typecheck unit bench bench-venv bench-validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,observe,alerts,postgres,mysql,rest]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	rm -rf demo
	$(BIN)/penstock init demo --demo
	cd demo && ../$(BIN)/penstock run
	@echo
	@echo "penstock is installed in .venv: 'source .venv/bin/activate', then in demo/:"
	@echo "  penstock status · penstock runs · penstock quarantine orders · penstock rebuild"
	@echo "  penstock query \"FROM orders LIMIT 5\" · penstock lineage revenue_by_country.revenue"

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

# every core: tests share no ports, databases or files (each has its own); a module's tests
# stay on one worker, so its module-scoped project fixture is built once
unit: install
	$(BIN)/pytest -q -n auto --dist loadscope

test: lint typecheck unit

bench: install
	$(BIN)/python bench/batch.py --rows 2000000

# bench/validate.py's rivals (pandera, Great Expectations) in a venv of their own: GX is heavy
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $@

bench-venv: $(BENCH_VENV)/.installed

bench-validate: bench-venv
	PENSTOCK_SHARED=$${PENSTOCK_SHARED:-../shared} $(BENCH_VENV)/bin/python bench/validate.py --rows 2000000 --repeat 3

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo .mypy_cache .ruff_cache .pytest_cache
