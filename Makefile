# Two commands on a fresh machine: `make train` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV ?= .venv
# A pinned CPU build installs quickly; an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
# Exact versions of every dependency but torch (`make lock` refreshes it; README: Installing).
LOCK := requirements.lock
UV_SPEC ?= uv>=0.13,<0.14
# Where pip finds torch wheels on this machine, if its config names a place; `make lock`
# resolves torch's own dependencies against that build (else PyTorch's CPU index).
TORCH_FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
LOCK_TORCH = $(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS),--torch-backend cpu)

.PHONY: install lock lock-upgrade train test test-all lint format bench sweep-distributed clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(UV_SPEC)"

# torch through pip, which reads pip's own configuration (a local CPU wheel, a CUDA index, a
# constraints file); then everything else at the locked versions, through uv.
$(STAMP): pyproject.toml $(LOCK) Makefile $(BIN)/uv
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r $(LOCK)
	# compat mode keeps hydra_plugins/ discoverable from an editable install
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -C editable_mode=compat -e .
	touch $(STAMP)

# Refresh the lock after changing a dependency in pyproject.toml: pins already in the lock are
# kept where they still fit, new dependencies get their newest fitting release (seconds).
lock: $(BIN)/uv
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --python $(BIN)/python --quiet \
		--constraint $(VENV)/torch-constraint.txt $(LOCK_TORCH) --no-emit-package torch \
		--custom-compile-command "make lock" --output-file $(LOCK) $(LOCK_ARGS)

# Every pin to its newest fitting release.
lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

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
