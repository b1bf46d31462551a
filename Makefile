# The first two targets are the README's set-up commands: each installs what it needs by itself.
PYTHON ?= python3
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
BIN := $(VENV)/bin

.PHONY: demo test test-fast install install-checkov install-browser synth check lint benchmark clean

demo: install ## run the whole platform locally, end to end, with sample data
	$(BIN)/tap demo

test: install install-checkov install-browser ## unit, functional and end-to-end tests
	$(BIN)/pytest -q

test-fast: install install-checkov ## unit and functional tests only
	$(BIN)/pytest -q -m "not e2e"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# checkov lives in its own virtual environment: its pins conflict with the platform's own.
install-checkov: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30
	touch $@

# The headless browser the console's end-to-end test drives: Debian's chromium package (as root, or with sudo);
# TAP_CHROMIUM names another Chromium binary instead.
install-browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$TAP_CHROMIUM" ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

synth: install
	$(BIN)/tap synth

check: install install-checkov
	$(BIN)/tap check

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/mypy

benchmark: install
	$(BIN)/python benchmarks/synth_speed.py
	$(BIN)/python benchmarks/etl_throughput.py
	$(BIN)/python benchmarks/local_platform.py
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf cdktf.out .tap build dist
