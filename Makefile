# Two commands on a fresh machine: `make book` (build and open the book) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
# nbgrader starts `alembic` and Jupyter starts kernels by name: the venv must come first.
export PATH := $(abspath $(BIN)):$(PATH)
# The book is the first test: warnings are errors, broken references fail it.
BUILD_BOOK := $(BIN)/jupyter-book build . -n -W --keep-going
# GitHub's workflow schema, vendored in check-jsonschema: validates offline.
LINT_WORKFLOWS := $(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

.PHONY: help install book lab check lint test release clean

help:
	@echo "make book     create .venv, install, build the book and print the page to open"
	@echo "make check    lint and the tests not marked slow: a developer's answer in under three minutes"
	@echo "make test     lint, release check, every test (the solutions run under nbgrader), book build, browser test"
	@echo "make lab      JupyterLab on exercises/"
	@echo "make release  regenerate exercises/ from solutions/ after editing a solution"

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

book: install
	$(PYTHON) -m booktools.prerun --jobs 2
	$(BUILD_BOOK)
	@echo "Open file://$(CURDIR)/_build/html/index.html in a browser."

lab: install
	$(BIN)/jupyter lab exercises/

release: install
	$(PYTHON) -m autograder release

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(LINT_WORKFLOWS)

check: lint
	$(PYTHON) -m pytest -m "not slow and not browser"

# Every solution notebook already runs top to bottom inside pytest, when nbgrader
# autogrades the full learner (tests/test_nbgrader_bridge.py checks its cells for
# errors, as `pytest --nbval-lax solutions/` would): nbval would run them all again.
# The browser tests drive Chromium through the site that the book build just made (and
# through a class report), so they come last; they need Debian's chromium and
# chromium-driver (README).
# The lessons that measure no speed run two at a time into the book's execution cache
# (booktools/prerun.py); the build then runs the lessons that measure speed, alone.
test: lint
	$(PYTHON) -m autograder release --check
	$(PYTHON) -m pytest
	$(PYTHON) -m booktools.prerun --jobs 2
	$(BUILD_BOOK)
	$(PYTHON) -m pytest -m browser tests/test_book_in_browser.py tests/test_report_in_browser.py

clean:
	rm -rf _build .pytest_cache
