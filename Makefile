# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates .venv and installs the project on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) run.py ablation --grid receptive_field

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q --durations=30

bench: $(STAMP)
	$(PY) run.py bench model

clean:
	rm -rf $(VENV) runs .pytest_cache
