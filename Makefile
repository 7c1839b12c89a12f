# Two commands set everything up from a fresh clone:
#   make demo [VIDEO=path/to/video.mp4] [OUT=out]   anonymize with the embedded model
#   make test                                       run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13 lies on disk on our machines; elsewhere pip finds it on PyPI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check $(FIND_LINKS)

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[train,dev,cluster,gui]'
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	$(BIN)/endoveil anonymize $(VIDEO) -o $(or $(OUT),out)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/model.py
	$(BIN)/python bench/offline.py

clean:
	rm -rf $(VENV) out bench/.cache
