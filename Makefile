# sphere-regimes: every command sets itself up (virtual environment, data) on a fresh machine.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

PRESET ?= cpu
OUT := _work/$(PRESET)
# The chapters the preset lists (read through the chapters' registry once the venv exists; `=`: evaluated late).
NB_NAMES = $(shell $(PY) -m sphere_regimes.chapters list $(PRESET) 2>/dev/null)
EXECUTED = $(NB_NAMES:%=$(OUT)/notebooks/%.ipynb)
# The preset's result store as presets.preset_store decides it (results/ for cpu and for a preset that says
# `store: committed`, else _work/PRESET/results), asked once, by the first recipe that needs it (the venv exists then).
STORE_OF_PRESET = env -u SPHERE_REGIMES_RESULTS $(PY) -m sphere_regimes.chapters store $(PRESET)
RESULTS = $(eval RESULTS := $$(shell $(STORE_OF_PRESET)))$(RESULTS)
IN_STORE = SPHERE_REGIMES_RESULTS=$(RESULTS)
WORKERS ?=  # parallel training processes; empty: one single-thread process per core
VERIFY_RUNS ?= 3
VERIFY_EPOCHS ?= 2
# Keep Jupyter, IPython, matplotlib and torch caches inside the build (hermetic runs).
ENV_DIR := $(CURDIR)/_work/env
export IPYTHONDIR := $(ENV_DIR)/ipython
export MPLCONFIGDIR := $(ENV_DIR)/matplotlib
export JUPYTER_CONFIG_DIR := $(ENV_DIR)/jupyter-config
export JUPYTER_DATA_DIR := $(ENV_DIR)/jupyter-data
export JUPYTER_RUNTIME_DIR := $(ENV_DIR)/jupyter-runtime
export XDG_CACHE_HOME := $(ENV_DIR)/cache
export TORCHINDUCTOR_CACHE_DIR := $(ENV_DIR)/inductor

.PHONY: help venv data browser demo readme-demo runs verify notebooks book nbval-refresh test test-fast clean lock FORCE

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

# The venv's own pip and setuptools are pinned too (constraints.txt), and that setuptools builds the package.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt pip setuptools
	$(PY) -m pip install -q --no-build-isolation -c constraints.txt -e ".[dev]"
	touch $@

venv: $(STAMP)  ## create .venv with the pinned toolchain (constraints.txt)

data: $(STAMP)  ## get Fashion-MNIST (Debian package as root on Debian, else torchvision's download)
	@if $(PY) -c "from sphere_regimes.data import load_raw; load_raw('fashion_mnist')" 2>/dev/null; then \
		echo "Fashion-MNIST: found"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else \
		$(PY) -c "from sphere_regimes.data import download_fashion_mnist; print(download_fashion_mnist())"; \
	fi

browser:  ## headless Chromium for the book's browser test (Debian package as root on Debian)
	@if command -v chromium >/dev/null; then echo "chromium: found"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not found: the browser test will be skipped (install chromium to run it)"; fi

demo: data  ## a small ELR sweep on real Fashion-MNIST that prints a regime table
	$(VENV)/bin/sphere-regimes demo

readme-demo: data  ## run the demo and rewrite the README's demo block with its table
	$(VENV)/bin/sphere-regimes demo | tee /dev/stderr | $(PY) tests/make_readme_demo.py README.md

runs: data  ## compute the runs the PRESET's chapters need and the store lacks (sphere-regimes sweep)
	$(IN_STORE) $(VENV)/bin/sphere-regimes sweep $(PRESET) $(if $(WORKERS),--workers $(WORKERS))

verify: data  ## re-execute VERIFY_RUNS stored runs of PRESET for their first epochs and compare with the store
	$(IN_STORE) $(PY) -m sphere_regimes.verify $(PRESET) --runs $(VERIFY_RUNS) --epochs $(VERIFY_EPOCHS)

# A notebook's inputs, rewritten only where they changed (sphere_regimes.chapters.build): its chapter's parameters
# (NB.params.yaml), those and the run states of every chapter it reads (NB.inputs), and the library files it
# runs (NB.d, included below), so that a notebook reruns only when its own chapter, runs or code change.
$(OUT)/notebooks/%.params.yaml $(OUT)/notebooks/%.inputs: FORCE | $(STAMP)
	@$(IN_STORE) $(PY) -m sphere_regimes.chapters inputs $(PRESET) $* $(@D)

$(OUT)/notebooks/%.ipynb: notebooks/%.py $(OUT)/notebooks/%.params.yaml $(OUT)/notebooks/%.inputs | $(STAMP)
	@mkdir -p $(@D) $(ENV_DIR)
	$(VENV)/bin/jupytext --quiet --to ipynb $< -o $(@D)/$*.source.ipynb
	$(IN_STORE) $(VENV)/bin/papermill --no-progress-bar -k python3 --cwd notebooks -f $(@D)/$*.params.yaml \
		$(@D)/$*.source.ipynb $(@:.ipynb=.partial.ipynb)
	mv $(@:.ipynb=.partial.ipynb) $@

.PRECIOUS: $(OUT)/notebooks/%.params.yaml $(OUT)/notebooks/%.inputs
$(OUT)/notebooks/%.d: ;
-include $(wildcard $(OUT)/notebooks/*.d)

notebooks: runs  ## execute the PRESET's stale notebooks (their chapter's parameters, runs or library code changed)
	$(MAKE) --no-print-directory $(EXECUTED)

book: notebooks  ## render the book of PRESET (default cpu) into _work/PRESET/book/_build/html
	rm -rf $(OUT)/book && mkdir -p $(OUT)/book/chapters
	cp -r book/_config.yml book/_toc.yml book/_mj book/_css book/*.md book/references.bib $(OUT)/book/
	$(IN_STORE) $(PY) -m sphere_regimes.report overview $(PRESET) $(OUT)/book $(EXECUTED)
	$(IN_STORE) $(PY) -m sphere_regimes.report page $(PRESET) $(EXECUTED) > $(OUT)/book/reproducibility.md
	$(PY) -m sphere_regimes.report stage $(OUT)/book/chapters $(EXECUTED)
	$(VENV)/bin/jupyter-book build --warningiserror --nitpick --keep-going --quiet $(OUT)/book
	@echo "Book: $(CURDIR)/$(OUT)/book/_build/html/index.html"

nbval-refresh:  ## re-execute the smoke notebooks and store them as nbval references in tests/notebooks
	$(MAKE) --no-print-directory notebooks PRESET=smoke
	$(PY) tests/make_references.py _work/smoke/notebooks tests/notebooks

test: data browser  ## everything: unit tests, the smoke notebooks (executed once) against tests/notebooks, the book in Chromium
	$(PY) -m pytest

test-fast: data  ## the edit-test loop: the unit tests, without those marked slow, book or ray
	$(PY) -m pytest -m "not slow and not book and not ray"

lock:  ## rewrite constraints.txt from the current .venv (pip and setuptools included)
	$(PY) -m pip freeze --all --exclude-editable | grep -v '^sphere-regimes' > constraints.txt

clean:  ## remove build products (keeps .venv, data and the committed results)
	rm -rf _work .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
