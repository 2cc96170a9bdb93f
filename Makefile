# The two commands of README.md. Each creates .venv on first use and reinstalls when
# pyproject.toml or constraints.txt change.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit integration lock

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,local]'
	touch $(STAMP)

# The pages (web/, docs/pages.md): npm ci from the lockfile (no install scripts), the type check
# and the bundle into web/dist; again whenever a file of web/ changed.
WEB_STAMP := web/dist/.built
WEB_SOURCES := $(shell find web/src -type f) web/package.json web/package-lock.json web/tsconfig.json web/build.mjs

$(WEB_STAMP): $(WEB_SOURCES)
	cd web && npm ci --ignore-scripts --no-audit --no-fund && npm run build
	touch $(WEB_STAMP)

# Debian's packages the tests need, installed when missing (CI runs as root; elsewhere through
# sudo): chromium and the CJK fonts for the pages' browser tests (Playwright cannot download
# browsers here), and nginx for the two-gateway fault test (deploy/nginx's sample in front).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_PACKAGES := chromium fonts-noto-cjk nginx
BROWSER_STAMP := $(VENV)/.test-packages

$(BROWSER_STAMP): $(STAMP)
	dpkg -s $(TEST_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(TEST_PACKAGES); }
	touch $(BROWSER_STAMP)

# Run the system on local defaults: Kafka and PostgreSQL as local processes, then every service.
run: $(STAMP) $(WEB_STAMP)
	$(BIN)/dispatch run

# Run lint, format check, type check, then the whole test suite on real Kafka and PostgreSQL.
test: lint $(WEB_STAMP) $(BROWSER_STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP) $(WEB_STAMP) $(BROWSER_STAMP)
	$(BIN)/pytest tests/integration

# Refresh constraints.txt from a clean resolve of pyproject.toml.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check '.[dev,local]'
	.lock-venv/bin/pip freeze --exclude alarm-dispatch > constraints.txt
	rm -rf .lock-venv
