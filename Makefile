# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml constraints.txt | md5sum | cut -c1-12)
STAMP := $(VENV)/.installed-all-$(HASH)
DEMO_STAMP := $(VENV)/.installed-demo-$(HASH)
DEMO_ARGS ?=

.PHONY: setup system demo test test-fast bench lint lock clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Everything (tests, benchmarks): every extra plus the dev tools, at the versions CI last passed with (constraints.txt;
# `make lock` moves them to the newest releases).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[all,dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP) $(DEMO_STAMP)

# What the demo needs (no Spark, Azure or test tools), so `make demo` on a fresh machine is quick.
$(DEMO_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[api,analytics,dashboard,report]"
	touch $(DEMO_STAMP)

setup: $(STAMP)

# System packages the browser and Azure tests need: Debian's Chromium (as root, via apt) and Azurite (npm).
system:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else echo "chromium missing: install it (apt-get install chromium) for the browser tests"; fi; fi
	@if [ -f package.json ] && [ ! -x node_modules/.bin/azurite-blob ]; then \
	  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi; fi
	@command -v java >/dev/null 2>&1 || { if [ "$$(id -u)" = "0" ]; then apt-get install -y -qq openjdk-17-jre-headless >/dev/null; fi; }

demo: $(DEMO_STAMP)
	$(BIN)/tunelake demo $(DEMO_ARGS)

test: setup system
	SPARK_LOCAL_IP=127.0.0.1 $(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not spark and not azure and not browser"

bench: setup system
	SPARK_LOCAL_IP=127.0.0.1 $(BIN)/python -m benchmarks.run

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

# Move every pinned package to its newest release, then `make test` before committing constraints.txt.
lock: | $(BIN)/python
	$(BIN)/pip install -q --upgrade --upgrade-strategy eager -e ".[all,dev]"
	{ echo "# Versions \`make setup\` installs (pip -c): the set the test suite last passed with. Refresh: make lock."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -i '^tunelake'; } > constraints.txt

clean:
	rm -rf $(VENV) node_modules tunelake-data benchmarks/work tests/artifacts
