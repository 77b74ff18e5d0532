# Quick start: `make run` (the engine against the embedded simulator in both dialects, then the
# whole chain: fixengine serve and a FIX 4.4 OMS client trading through it), `make test`.
# Both prepare .venv first (scripts/bootstrap: quickfix is compiled once per machine and reused).

PYTHON ?= python3
VENV := .venv

.PHONY: setup run test clean

setup:
	@PYTHON=$(PYTHON) scripts/bootstrap

run: setup
	@$(VENV)/bin/fixengine demo
	@scripts/run-chain

# Three workers: the socket tests mostly wait (heartbeats, backoffs), so they overlap well on 2 cores.
test: setup
	@$(VENV)/bin/python -m pytest -n 3

clean:
	rm -rf $(VENV) var .pytest_cache
