# Two commands on a fresh machine: `make demo` (CPU demo) and `make test` (the test suite).
# Both create .venv with the pinned stack first (constraints.txt; torch's CPU wheel first, from
# PyTorch's CPU index: on Linux, PyPI's `torch` is the CUDA build, several GB).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.morphcpt-installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (0: one process). Two keep 2 cores busy: much of the suite
# waits on subprocesses (NeMo imports, Slurm polling). Tests that share the training run or the
# local Slurm cluster stay on one worker (tests/conftest.py).
PYTEST_WORKERS ?= 2
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup test demo report lint plan profile clean-demo

setup: $(STAMP)

$(STAMP): constraints.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11) on PATH" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q torch==2.13.0 --index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[nemo,eval,slurm,test]'
	$(BIN)/python -c "from morphcpt.assets import llama3_tokenizer_dir; print('Llama-3 tokenizer:', llama3_tokenizer_dir())"
	touch $@

test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

demo: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local demo --configfile config/demo.yaml
	@echo; echo "Comparison table: results-demo/report/comparison.md"; echo "Plot: results-demo/report/comparison.png"

# Snakemake's HTML report of the demo (after `make demo`): one self-contained file to open in a browser.
REPORT ?= results-demo/report.html
report: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile profiles/local demo --configfile config/demo.yaml --report $(REPORT)
	@echo; echo "Report: $(REPORT) (open it in a browser, e.g. xdg-open $(REPORT))"

lint: setup
	$(BIN)/snakemake --lint

profile: setup
	$(BIN)/morphcpt install-profile slurm

plan: setup
	$(BIN)/morphcpt plan all_llama --full
