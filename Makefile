# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-console test install clean system-packages console-vendor console-messages

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	@touch $@

demo: $(STAMP)
	$(BIN)/gateway demo

# The demo, then the gateway left running with development logins for the browser console.
demo-console: $(STAMP)
	$(BIN)/gateway demo --keep

# One worker per core (pytest-xdist), each test file kept on one worker: its module-scoped
# gateway and browser are shared by its tests. PYTEST_ARGS="-n 0" runs everything in one process.
test: $(STAMP) node_modules
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

# The npm package `soap` checks the gateway's WSDL with an independent client
# (tests/soap/test_node_soap.py). Without npm, or offline, that one test is skipped.
node_modules: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@ || echo 'npm ci failed: the Node.js SOAP test will be skipped'; \
	else echo 'npm not found: the Node.js SOAP test will be skipped'; fi

# The console's browser libraries are committed (the wheel serves them); this refreshes them
# from node_modules after a version change in package.json.
CONSOLE_VENDOR := gateway/entrypoints/http/console/static/vendor
console-vendor: node_modules
	cp node_modules/htmx.org/dist/htmx.min.js $(CONSOLE_VENDOR)/htmx.min.js
	cp node_modules/htmx.org/LICENSE $(CONSOLE_VENDOR)/htmx.LICENSE
	cp node_modules/chart.js/dist/chart.umd.min.js $(CONSOLE_VENDOR)/chart.umd.min.js
	cp node_modules/chart.js/LICENSE.md $(CONSOLE_VENDOR)/chart.js.LICENSE.md

# The console's catalogues (ru, kk, en) from the messages in its code and templates.
console-messages: $(STAMP)
	$(BIN)/python -m gateway.entrypoints.http.console.locale.translations

# Debian packages the tests use as independent verifiers and as the browser (run as root; CI does).
# A tool already on the PATH counts as present, whichever package brought it: Node.js from
# NodeSource carries its own npm, and Debian's npm package conflicts with it.
SYSTEM_PACKAGES := xmlsec1:xmlsec1 libengine-gost-openssl: chromium:chromium nodejs:node npm:npm
system-packages:
	@missing=$$(for entry in $(SYSTEM_PACKAGES); do \
		package=$${entry%%:*}; tool=$${entry#*:}; \
		if [ -n "$$tool" ]; then command -v $$tool >/dev/null 2>&1 || echo $$package; \
		else dpkg -s $$package >/dev/null 2>&1 || echo $$package; fi; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info node_modules
