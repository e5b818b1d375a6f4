# The test command of the README: lint, types, layering, then the suite on two workers.
PYTHON ?= python

.PHONY: test lint demo bench

test: lint
	$(PYTHON) -m pytest -n 2 -q

lint:
	$(PYTHON) -m ruff check meshrules tests benchmarks
	$(PYTHON) -m mypy --strict meshrules
	lint-imports

demo:
	meshrules demo

bench:
	$(PYTHON) benchmarks/run.py --sizes S M L
