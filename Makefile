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

.PHONY: help venv data demo test clean lock

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
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

demo: data  ## main job until the book exists: a small ELR sweep that prints a regime table
	$(VENV)/bin/sphere-regimes demo

test: data  ## run the test suite
	$(PY) -m pytest

lock:  ## rewrite constraints.txt from the current .venv
	$(PY) -m pip freeze --exclude-editable | grep -v '^sphere-regimes' > constraints.txt

clean:  ## remove build products (keeps .venv, data and the committed results)
	rm -rf _work .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
