# Two commands matter: `make demo` (main job end to end) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test notebooks bench clean venv report-screenshots schemas browser-check

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test,notebooks,spark]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/village-credit demo

# one worker per core; a test file stays on one worker (its module fixtures are built once);
# the files with slow tests start first (tests/conftest.py orders them; xdist keeps the order)
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

# JSON Schemas of the hand-written file formats, for editors (docs/file-formats.md)
schemas: $(STAMP)
	$(VENV)/bin/village-credit schemas -o schemas

notebooks: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) bench/run_all.py

# headless screenshots of the fairness report, to check it by eye (needs chromium)
report-screenshots: $(STAMP)
	$(PY) scripts/report_screenshots.py reports/screenshots

# what people open, in a real headless Chromium: the MLflow UI over a test store, the
# fairness and validation reports (tests/test_browser.py); screenshots to docs/screenshots/
browser-check: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium fonts-noto-cjk)
	fc-list :lang=zh family | grep -q . || (apt-get update && apt-get install -y fonts-noto-cjk)
	$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install --quiet playwright
	VC_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest tests/test_browser.py -q -rs

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
