PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: demo test test-all bench lint install clean

.venv/.installed-test: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,control]"
	touch $@

.venv/.installed-bench: .venv/.installed-test
	$(PIP) install -q -e ".[test,control,bench]"
	touch $@

.venv/.installed-all: .venv/.installed-test
	$(PIP) install -q -e ".[test,control,bench,ray]"
	touch $@

install: .venv/.installed-test

demo: .venv/.installed-test
	$(PY) -m plastix.cli train --recipe quickstart

test: .venv/.installed-test
	$(PY) -m pytest -q -n 2

test-all: .venv/.installed-all
	$(PY) -m pytest -q -n 2 -m "slow or not slow"

bench: .venv/.installed-bench
	$(PY) bench/ppo_throughput.py
	$(PY) bench/grid_throughput.py
	$(PY) bench/dqn_throughput.py
	$(PY) bench/nets_cost.py
	$(PY) bench/probe_overhead.py
	$(PY) bench/offpolicy_throughput.py

lint: .venv/.installed-test
	.venv/bin/ruff check plastix tests bench

clean:
	rm -rf .venv runs
