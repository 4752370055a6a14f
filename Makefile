# The two commands of the README: `make demo` (main job) and `make test` (the tests).
# Both set everything up first (scripts/setup.sh: Python 3.12 venv in .venv, all from PyPI).
PY := .venv/bin/python
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test test-slow test-all bench lint stdo-results
setup:
	bash scripts/setup.sh dev

demo: setup
	.venv/bin/vsvsr demo --out out/demo

test: setup
	$(PY) -m pytest -m "not slow and not gpu" -q

test-slow: setup
	$(PY) -m pytest -m "slow" -q

test-all: setup
	$(PY) -m pytest -m "not gpu" -q

bench: setup
	.venv/bin/vsvsr bench --json out/bench.json

stdo-results: setup  # docs/stdo.md's tables: ~15 min on 2 idle cores
	bash scripts/stdo_results.sh

lint: setup
	.venv/bin/ruff check vsvsr plugin_build tests scripts
