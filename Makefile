# vpipe: `make demo` runs the main job end to end, `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ASSETS ?= $(abspath ../shared/assets)
DEMO_VIDEO ?= $(ASSETS)/video/slow_traffic_small.mp4
DEMO_JOBS  ?= jobs

.PHONY: setup demo test lint bench soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	@test -f "$(DEMO_VIDEO)" || { echo "demo: $(DEMO_VIDEO) not found (set DEMO_VIDEO=your.mp4)"; exit 1; }
	@test -d "$(ASSETS)/models/lengstrom_fst/wave" || test -n "$$VPIPE_MODELS_DIR" || { \
	  echo "demo: the 'wave' weights are not in $(ASSETS)/models: place lengstrom_fst/wave under ~/.cache/vpipe/models or set VPIPE_MODELS_DIR"; exit 1; }
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} VPIPE_JOBS_DIR=$(DEMO_JOBS) sh -e -c '\
	  $(VENV)/bin/vpipe split "$(DEMO_VIDEO)" --job demo; \
	  $(VENV)/bin/vpipe stylize --job demo --style wave --range 1-120 --chunk 30 --max-side 360; \
	  $(VENV)/bin/vpipe retry-failed --job demo; \
	  $(VENV)/bin/vpipe status --job demo; \
	  $(VENV)/bin/vpipe assemble --job demo --fill original'

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/mypy pipeline

bench: setup
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_core.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_gatys.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_arbitrary.py

# Not in CI: SIGKILL the coordinator at random moments TRIALS times, resume, check nothing is lost.
TRIALS ?= 20
soak: setup
	$(PY) bench/soak.py --trials $(TRIALS)

clean:
	rm -rf $(VENV) jobs/*/ .pytest_cache .mypy_cache .ruff_cache
