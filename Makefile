# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SIZE ?= small
TEST_WORKERS ?= 2

.PHONY: demo install test test-browser postgresql lint format bench clean

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

install:  ## production: .venv with kpi-red, dbt and the panel (run it in the project's directory)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '.[serve]'
	@rm -f $(VENV)/.installed-*

# Two workers (pytest-xdist), each test file on one worker: a file's module fixtures (a
# built and matched demo) are built once. Every test makes its own databases and roles.
test: $(STAMP) postgresql  ## the whole suite: the embedded server, and Debian's oldest supported PostgreSQL
	$(BIN)/pytest -m "not browser" -n $(TEST_WORKERS) --dist loadfile

# The production suite also runs on the oldest supported PostgreSQL from Debian's package
# (a throwaway cluster it starts itself). Installed when missing and we are root (CI);
# elsewhere those tests skip, saying why.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
		else \
			echo "note: Debian's postgresql is not installed: the production suite skips that server"; \
		fi

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
	cd matcher/store/sql && $(CURDIR)/$(BIN)/sqlfluff lint .  # psycopg placeholders: its own templater

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## make bench SIZE=small|medium|large
	$(BIN)/python -m bench --size $(SIZE)

clean:
	-test -x $(BIN)/kpi-red && $(BIN)/kpi-red db stop
	rm -rf $(VENV) .data target logs profiles.yml .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
