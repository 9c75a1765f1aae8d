# Everything a fresh clone needs: only Python 3.10+ must be present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Three test workers on a 2-core machine: tests spend part of their time in
# start-ups, subprocesses and files, so a third worker fills the gaps (make test:
# 1064 and 1167 s of tests with 3, 1213 and 1240 s with 2 (docs/testing.md).
PYTEST_WORKERS ?= 3

.PHONY: install train test test-all lint format bench bench-defects clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "adx needs Python 3.10+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# The README's main job: the conv autoencoder on the embedded digits data.
train: $(STAMP)
	$(BIN)/adx train

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check anomaly_cli hydra_plugins tests benchmarks
	$(BIN)/ruff format --check anomaly_cli hydra_plugins tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format anomaly_cli hydra_plugins tests benchmarks
	$(BIN)/ruff check --fix anomaly_cli hydra_plugins tests benchmarks

# Speed of adx against plain Keras, checkpoints, phases, utilisation and scaling
# (benchmarks/speed.py), then the training-speed knobs (benchmarks/options.py);
# about 30 minutes on 2 cores, rewrites their sections of benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/speed.py --write-readme
	$(BIN)/python benchmarks/options.py --write-readme

# Image and pixel AUROC of every image model per defect kind on generated
# MVTec-layout textures and objects (benchmarks/defects.py); resumes from
# $(DEFECTS_OUT)/results.csv, rewrites its section of benchmarks/README.md.
DEFECTS_OUT ?= /tmp/adx_defects_bench
bench-defects: $(STAMP)
	$(BIN)/python benchmarks/defects.py --out $(DEFECTS_OUT) --write-readme

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
