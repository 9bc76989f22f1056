# lasskit developer targets. `make install` then `make test` on a fresh machine.
#   make install BROWSER=0      skip chromium (apt-get as root); the browser tests then skip
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu   CPU-only torch wheels (~1 GB
#                               instead of ~6 GB of CUDA libraries)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_PINS := torch==2.14.1 torchaudio==2.11.0
BROWSER ?= 1
TORCH_INDEX ?=
TORCH_FROM := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

.PHONY: install browser test test-fast bench demo clean

install: $(BIN)/lasskit $(if $(filter 0 no false,$(BROWSER)),,browser)

# Chromium + ChromeDriver for the listening-test browser tests (Debian packages); tolerant of
# failure: without them those tests skip with a reason.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver (apt-get) for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
	  || echo "note: could not install chromium; the browser tests will skip"; \
	else echo "note: no chromium/chromedriver (apt-get install chromium chromium-driver as root); the browser tests will skip"; fi

$(BIN)/lasskit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_FROM) $(TORCH_PINS)
	$(BIN)/pip install --quiet -e '.[dev,baseline,train]' $(TORCH_PINS)
	@touch $@

# the whole suite on 2 workers: under 5 minutes on an idle 2-core machine. Work stealing: an idle
# worker takes tests queued for the other, so both finish together (3 min 36 s; xdist's default
# up-front split left one worker idle at the end: 4 min 35 s to 4 min 58 s). test-fast's many
# short tests run faster on the default split (45-47 s vs 59 s).
test: install
	$(BIN)/python -m pytest -n 2 --dist worksteal tests

# everything but the tests marked slow (training, a real browser, full disks, subprocess runs):
# under a minute on 2 cores
test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not slow" tests

bench: install
	@fail=0; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || fail=1; done; \
	if [ $$fail = 1 ]; then echo "some benchmark missed its floor (see above)"; fi; exit $$fail

demo: install
	$(BIN)/lasskit demo demo_workspace

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_workspace
