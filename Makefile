PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: demo test test-all bench bench-atari lint install clean

.venv/.installed-test: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,control,metaworld]"
	touch $@

.venv/.installed-bench: .venv/.installed-test
	$(PIP) install -q -e ".[test,control,metaworld,bench]"
	touch $@

.venv/.installed-all: .venv/.installed-test
	$(PIP) install -q -e ".[test,control,metaworld,bench,ray]"
	touch $@

# Dopamine's JAX DQN (the reference of bench/atari_throughput.py) needs TensorFlow and a
# tensorflow-probability that does not import beside sbx's: it gets an environment of its own
.venv-dopamine/.installed: bench/_dopamine_dqn.py
	test -x .venv-dopamine/bin/python || python3 -m venv .venv-dopamine
	.venv-dopamine/bin/pip install -q "dopamine-rl==4.1.2" "jax==0.10.2" "jaxlib==0.10.2" "flax==0.12.8" \
		"optax==0.2.8" "ale-py==0.12.1"
	.venv-dopamine/bin/pip uninstall -q -y tensorflow-probability  # 0.25 fails to import on jax 0.10
	.venv-dopamine/bin/pip install -q tfp-nightly
	touch $@

install: .venv/.installed-test

demo: .venv/.installed-test
	$(PY) -m plastix.cli train --recipe quickstart

test: .venv/.installed-test
	$(PY) -m pytest -q -n 2 --dist worksteal

test-all: .venv/.installed-all
	$(PY) -m pytest -q -n 2 --dist worksteal -m "slow or not slow"

bench: .venv/.installed-bench
	$(PY) bench/ppo_throughput.py
	$(PY) bench/grid_throughput.py
	$(PY) bench/dqn_throughput.py
	$(PY) bench/nets_cost.py
	$(PY) bench/probe_overhead.py
	$(PY) bench/offpolicy_throughput.py

bench-atari: .venv/.installed-bench .venv-dopamine/.installed
	$(PY) bench/atari_throughput.py

lint: .venv/.installed-test
	.venv/bin/ruff check plastix tests bench

clean:
	rm -rf .venv .venv-dopamine runs
