# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SIZE ?= small

.PHONY: demo test test-browser lint format bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,serve]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)  ## embedded PostgreSQL, demo data, dbt build -> match -> dbt build, metrics
	$(BIN)/kpi-red db start
	$(BIN)/kpi-red init
	$(BIN)/kpi-red demo
	$(BIN)/kpi-red cycle
	$(BIN)/kpi-red metrics

test: $(STAMP)  ## the whole suite, on throwaway databases of the embedded server
	$(BIN)/pytest -m "not browser"

test-browser: $(STAMP)  ## the served page in Debian's headless Chromium
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)
	$(BIN)/pytest -m browser

lint: $(STAMP)  ## sqlfluff's dbt templater needs a profile: db start writes one
	$(BIN)/kpi-red db start >/dev/null
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint models macros tests

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## make bench SIZE=small|medium|large
	$(BIN)/python -m bench --size $(SIZE)

clean:
	-test -x $(BIN)/kpi-red && $(BIN)/kpi-red db stop
	rm -rf $(VENV) .data target logs profiles.yml .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
