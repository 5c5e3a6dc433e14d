# Everything sets itself up: `make test` and `make demo` work on a fresh machine with python3.11.
PYTHON    ?= python3
AIRFLOW3  ?= 3.3.2
AIRFLOW2  ?= 2.11.2
TOOLS     := .venvs/tools
UV        := $(TOOLS)/bin/uv
VENV3     := .venvs/airflow3
VENV2     := .venvs/airflow2
PYTEST_ARGS ?=

.PHONY: test lint typecheck test-airflow3 test-airflow2 demo demo-serve browser-deps bench clean dist connection-form-screenshot

test: lint typecheck browser-deps test-airflow3 test-airflow2

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv

# One virtual environment per supported Airflow line; rebuilt when pyproject.toml changes.
$(VENV3)/.ready: pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV3)
	VIRTUAL_ENV=$(VENV3) $(UV) pip install --quiet "apache-airflow==$(AIRFLOW3)" -e ".[dev]"
	touch $@

$(VENV2)/.ready: pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV2)
	VIRTUAL_ENV=$(VENV2) $(UV) pip install --quiet "apache-airflow==$(AIRFLOW2)" -e ".[dev]"
	touch $@

lint: $(VENV3)/.ready
	$(VENV3)/bin/ruff check .
	$(VENV3)/bin/ruff format --check .

typecheck: $(VENV3)/.ready
	$(VENV3)/bin/mypy

test-airflow3: $(VENV3)/.ready
	$(VENV3)/bin/python -m pytest $(PYTEST_ARGS)

# Tests marked airflow_independent check code that is the same on either line; they run on Airflow 3.
test-airflow2: $(VENV2)/.ready
	$(VENV2)/bin/python -m pytest -m "not airflow_independent" $(PYTEST_ARGS)

# The sdist and the wheel in dist/ (install with `pip install dist/airflow_provider_whatsapp-*.whl`).
dist: $(UV)
	rm -rf dist
	$(UV) build --out-dir dist

# Headless Chromium (and an emoji font, for reactions) for the inbox browser test: Debian's packages,
# installed only when missing.
BROWSER_PKGS := chromium fonts-noto-color-emoji
browser-deps:
	@if { [ -x /usr/bin/chromium ] || [ -n "$$CHROMIUM" ]; } && [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	else echo "browser-deps: cannot install $(BROWSER_PKGS); without chromium the browser test is skipped"; fi

# The example DAGs against the local sandbox, then a transcript and the inbox URL.
# SANDBOX=0 with MATON_API_KEY set sends through the real gateway; DEMO_ARGS="--screenshot docs/inbox.png".
DEMO_ARGS ?=
demo: $(VENV3)/.ready
	$(VENV3)/bin/python -m airflow_provider_whatsapp.sandbox.demo $(DEMO_ARGS)

# The same, then keeps the sandbox and its inbox up until Ctrl-C.
demo-serve: $(VENV3)/.ready
	$(VENV3)/bin/python -m airflow_provider_whatsapp.sandbox.demo --serve $(DEMO_ARGS)

# Benchmarks (bulk throughput at the limit, client overhead, import cost, upload memory); writes
# benchmarks/results.md with the machine, the versions, median/min/max and the command of each figure.
bench: $(VENV3)/.ready
	$(VENV3)/bin/python benchmarks/run.py

# Redraws docs/connection-form.png: the Airflow 3 connection form for a new maton connection.
connection-form-screenshot: $(VENV3)/.ready browser-deps
	$(VENV3)/bin/python docs/connection_form_screenshot.py docs/connection-form.png

clean:
	rm -rf .venvs .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
