# lasskit developer targets. `make install` then `make test` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PINS := torch==2.14.1 torchaudio==2.11.0

.PHONY: install test test-fast bench demo clean

install: $(BIN)/lasskit

$(BIN)/lasskit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PINS)
	$(BIN)/pip install --quiet -e '.[dev,baseline]' $(TORCH_PINS)
	@touch $@

test: install
	$(BIN)/python -m pytest -n 2 tests

bench: install
	@fail=0; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || fail=1; done; \
	if [ $$fail = 1 ]; then echo "some benchmark missed its floor (see above)"; fi; exit $$fail

demo: install
	$(BIN)/lasskit demo demo_workspace

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_workspace
