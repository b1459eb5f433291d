# Two commands on a fresh machine:  `make lab`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install lab test lint bench ext clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[lab,test]'
	@# the install builds the JupyterLab extension with npm (first time only) and enables it
	$(VENV)/bin/jupyter labextension list 2>&1 | grep -q 'tinyml-workbench v.*enabled'
	$(VENV)/bin/jupyter server extension list 2>&1 | grep -q 'workbench.lab.*enabled'
	touch $(STAMP)

install: $(STAMP)

## Install, then open JupyterLab on your own copy of the lessons (~/tinyml-workbench, or
## $WORKBENCH_HOME; see `workbench lab --help`) with the virtual board as the device.
lab: $(STAMP)
	$(VENV)/bin/workbench lab

## Install, then lint (ruff), check the layering contract (import-linter, docs/architecture.md)
## and run the whole test suite (lessons included, executed with nbmake).
test: $(STAMP)
	$(VENV)/bin/ruff check workbench tests bench
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q tests --nbmake notebooks

## Lint and the layering contract only (fast).
lint: $(STAMP)
	$(VENV)/bin/ruff check workbench tests bench
	$(VENV)/bin/lint-imports

## Benchmarks; figures go to bench/RESULTS.md by hand, with the command.
bench: $(STAMP)
	$(PY) bench/link.py
	$(PY) bench/capture.py
	$(PY) bench/liveplot.py
	$(PY) bench/update.py

## Rebuild the JupyterLab extension after editing extensions/tinyml-workbench, and link the
## build into the venv (as `jupyter labextension develop` does); reload the page to see it.
ext: $(STAMP)
	cd extensions/tinyml-workbench && npm install --no-audit --no-fund && \
	  PATH="$(abspath $(VENV))/bin:$$PATH" npm run build
	rm -rf $(VENV)/share/jupyter/labextensions/tinyml-workbench
	ln -s "$(abspath workbench/labextension)" $(VENV)/share/jupyter/labextensions/tinyml-workbench

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info workbench/labextension \
	  extensions/tinyml-workbench/lib extensions/tinyml-workbench/tsconfig.tsbuildinfo
