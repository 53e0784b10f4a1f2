# vpipe: `make demo` runs the main job end to end (the whole clip), `make test` runs the test suite.
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
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	touch $@

setup: $(VENV)/.installed

# The demo needs no download and no VPIPE_MODELS_DIR: the style 'starry_night' is shipped in styles/
# (trained by `vpipe train-style`). Without the real clip it makes a test clip with ffmpeg.
demo: setup
	@test -f "$(DEMO_VIDEO)" || { echo "demo: $(DEMO_VIDEO) not found: using a generated test clip (set DEMO_VIDEO=your.mp4)"; \
	  $(PY) -c 'import subprocess, imageio_ffmpeg; subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30000/1001", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "5", "-pix_fmt", "yuv420p", "-c:a", "aac", "$(DEMO_JOBS)/demo-source.mp4"], check=True)'; }
	VPIPE_JOBS_DIR=$(DEMO_JOBS) sh -e -c '\
	  video="$(DEMO_VIDEO)"; test -f "$$video" || video="$(DEMO_JOBS)/demo-source.mp4"; \
	  $(VENV)/bin/vpipe run "$$video" --job demo --style starry_night --fill original'

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/mypy pipeline

bench: setup
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_core.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_fast.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_startup.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_gatys.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_gatys_look.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_arbitrary.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_look.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_video_mode.py
	$(PY) bench/bench_ray.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_memory.py
	$(PY) bench/bench_io.py
	VPIPE_MODELS_DIR=$${VPIPE_MODELS_DIR:-$(ASSETS)/models} $(PY) bench/bench_png.py

# Not in CI: SIGKILL the coordinator at random moments TRIALS times and SIGSTOP a random worker STOPS times
# (short --frame-timeout), resume, check nothing is lost, corrupt, recomputed or hung.
TRIALS ?= 50
STOPS ?= 20
soak: setup
	$(PY) bench/soak.py --trials $(TRIALS) --stops $(STOPS)

clean:
	rm -rf $(VENV) jobs/*/ .pytest_cache .mypy_cache .ruff_cache
