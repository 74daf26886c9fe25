# skimviz
#
#   make run    create .venv (if missing), install the pinned requirements, and serve the app on
#               http://127.0.0.1:8501 (`streamlit run app.py`; settings in .streamlit/config.toml)
#   make test   the same install plus requirements-test.txt, then the whole suite: pytest tests
#               (unit, AppTest and real-browser tests; browser tests skip without /usr/bin/chromium
#               unless SKIMVIZ_REQUIRE_BROWSER=1, see .ci/run)
#   make gallery  full-page screenshots of every page (1280 and 768 px wide, default view and
#               presentation mode) in artifacts/gallery/, with an index.html to see them all;
#               fails when a page shows an exception, an error or "Page not found" (needs
#               /usr/bin/chromium; options through GALLERY_ARGS, e.g. GALLERY_ARGS="--widths 1280")
#   All three also compile the SRU's C++ extension into build/ext once
#   (`python -m skimviz._ext build`).
#
# Install. torch goes in first, alone, as `pip install torch==2.13.0`: pip on the project's
# machines is configured with `find-links = /opt/wheels`, which holds the CPU wheel
# (torch-2.13.0+cpu); PEP 440 lets `==2.13.0` match `2.13.0+cpu` and pip prefers it. Elsewhere,
# point pip at the CPU wheels yourself, e.g.
#     make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# The rest is installed against the same pins (torch stays 2.13.0), and .ci/check_env.py then
# fails the target if torch is not 2.13.0 (CPU) or any nvidia-* (CUDA) package got in.
# A stamp file named after a hash of the requirement files makes a repeated install a no-op:
# edit a requirements file and the next `make run`/`make test` installs again.
#
# Variables: PYTHON (interpreter that creates the venv, 3.11), HOST, PORT, PYTEST_ARGS
# (e.g. make test PYTEST_ARGS="-x -k mnist"), PYTEST_WORKERS (test processes, default 2, one per
# core of the project's machines; 0 runs the suite in one process), TORCH_PIP_ARGS, GALLERY_ARGS.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := run
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules --no-print-directory

PYTHON ?= python3
VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8501
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
TORCH_PIP_ARGS ?=
GALLERY_ARGS ?=

VENV_PY := $(VENV)/bin/python
PIP_INSTALL := $(VENV_PY) -m pip --disable-pip-version-check install --progress-bar off
CHECK_ENV := $(VENV_PY) .ci/check_env.py

hash = $(shell cat $(1) | sha256sum | cut -c1-16)
RUN_STAMP := $(VENV)/.installed-$(call hash,requirements.txt pyproject.toml .ci/check_env.py)
TEST_STAMP := $(VENV)/.installed-test-$(call hash,requirements.txt pyproject.toml requirements-test.txt .ci/check_env.py)

.PHONY: run test gallery loadtest ext

run: $(RUN_STAMP) ext
	@$(CHECK_ENV)
	$(VENV)/bin/streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: $(TEST_STAMP) ext
	@$(CHECK_ENV)
	$(VENV)/bin/pytest tests -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

gallery: $(TEST_STAMP) ext
	@$(CHECK_ENV)
	$(VENV_PY) scripts/gallery.py $(GALLERY_ARGS)

# A class of 30 on one app process (docs/results/classroom.md); LOADTEST_ARGS adds options.
loadtest: $(TEST_STAMP) ext
	@$(CHECK_ENV)
	$(VENV_PY) deploy/loadtest.py --students 30 --trainings 1 --seconds 90 --settle 300 --browser $(LOADTEST_ARGS)

# The SRU's C++ recurrence (skimviz/csrc), compiled ahead of time into build/ext (a no-op when
# already built for this source, torch and compiler). Without a C++ compiler the library falls
# back to the PyTorch loop and says so, so a failed build does not stop run/test.
ext: $(RUN_STAMP)
	@$(VENV_PY) -m skimviz._ext build || echo "ext: C++ SRU extension not built; the PyTorch fallback will be used"

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): | $(VENV_PY)
	rm -f $(VENV)/.installed-*
	$(PIP_INSTALL) torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PIP_INSTALL) -r requirements.txt
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	$(CHECK_ENV)
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	rm -f $(VENV)/.installed-test-*
	$(PIP_INSTALL) -r requirements-test.txt -c requirements.txt
	$(CHECK_ENV)
	touch $@
