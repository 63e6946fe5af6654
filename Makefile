# Two commands matter: `make demo` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
VENV := .venv
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENDOR := src/cipulse/web/static/vendor
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo serve test lint typecheck bench deps python-deps frontend chromium clean lock

demo: deps ## Dashboard on http://127.0.0.1:8000 with demo data (SQLite)
	$(VENV)/bin/cipulse demo

serve: deps
	$(VENV)/bin/cipulse serve

test: deps chromium lint typecheck ## The whole suite: lint, types, tests on SQLite and PostgreSQL, browser
	$(VENV)/bin/pytest -n 2 --dist loadgroup

lint: python-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: python-deps
	$(VENV)/bin/mypy

bench: deps ## Every benchmark in bench/, each against its naive method (about 30 min)
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/sync_github.py
	$(VENV)/bin/python bench/sync_github.py --backend postgresql
	$(VENV)/bin/python bench/webhooks.py
	$(VENV)/bin/python bench/webhooks_writers.py

deps: python-deps frontend

python-deps: $(VENV)/.synced

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: requirements.lock pyproject.toml | $(UV)
	[ -x $(VENV)/bin/python ] || $(UV) venv --quiet --python python3 $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --require-hashes requirements.lock
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps -e .
	touch $@

lock: | $(UV) ## Re-pin requirements.lock after changing pyproject.toml
	$(UV) pip compile pyproject.toml --group dev --generate-hashes --python-version 3.11 --no-header -q -o requirements.lock

frontend: $(VENDOR)/.synced

$(VENDOR)/.synced: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/echarts/dist/echarts.min.js node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	touch $@

chromium: ## Debian's Chromium for the browser tests (Playwright's own download does not work here)
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

clean:
	rm -rf $(VENV) .tools node_modules $(VENDOR) .pytest_cache .mypy_cache .ruff_cache
