# Two commands on a fresh machine: `make train` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
# A pinned CPU build installs quickly; an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: install train test test-all lint format bench sweep-distributed clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	# compat mode keeps hydra_plugins/ discoverable from an editable install
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: install
	$(BIN)/lapp train $(ARGS)

# Two test processes on the 2 cores, each torch pinned to 1 thread (oversubscription costs 5-20x).
PYTEST := OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2

test: install
	$(PYTEST) $(ARGS)

# test-all also runs the fuzz suite (tests/fuzz) with its long Hypothesis profile.
test-all: install
	LAPP_FUZZ=long $(PYTEST) -m "" $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/run_all.py $(ARGS)

# WORKERS sweep processes sharing one Optuna study in a local PostgreSQL (README: "From one
# laptop to a cluster"); ARGS are the `lapp train -m` overrides.
WORKERS ?= 2
sweep-distributed: install
	LAPP="$(BIN)/lapp" scripts/distributed_sweep.sh $(WORKERS) $(or $(ARGS),hparams_search=digits_mlp)

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	find . -name __pycache__ -not -path "./$(VENV)/*" -exec rm -rf {} +
