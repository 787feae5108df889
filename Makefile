# Two entry points for a fresh clone (README): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test test-fast fashion-mnist slurm lint docs gpu-check

$(VENV)/.installed: requirements.lock setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.lock
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

# The CPU demo's dataset: Debian's dataset-fashion-mnist, installed where apt-get runs as root.
fashion-mnist:
	@if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	  || echo "warning: could not install dataset-fashion-mnist; the demo will need 'xbmbench data fetch fashion-mnist'"; \
	else echo "note: dataset-fashion-mnist not installed (no root apt-get); the demo will need 'xbmbench data fetch fashion-mnist'"; fi

# The tests marked slurm start a single-node Slurm (tests/bench/slurm_cluster.py): Debian's
# slurm-wlm and munge, installed where apt-get runs as root; skipped elsewhere, with the reason.
slurm:
	@if command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq slurm-wlm munge || (apt-get update -qq && apt-get install -y -qq slurm-wlm munge)) >/dev/null \
	  || echo "warning: could not install slurm-wlm and munge; the tests marked slurm will be skipped"; \
	else echo "note: slurm-wlm not installed (no root apt-get); the tests marked slurm will be skipped"; fi

demo: setup
	$(VENV)/bin/xbmbench reproduce

# lint, then the import contracts of setup.cfg ([importlinter]), every test, and the docs site
test: lint fashion-mnist slurm
	$(PY) -m pytest
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# the generated blocks of README.md and docs/*.md rewritten from the code, then the site (site/)
docs: setup
	$(PY) -m commands.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# the same without the tests marked slow (a real backbone, worker pools, submitit, subprocesses)
test-fast: lint fashion-mnist
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The paper profile on a GPU (README, "The GPU path"): the cuda tests, bench memory/train/data on
# CUDA and one paper-profile epoch on generated JPEGs; JSON + Markdown in $(GPU_CHECK_OUT).
# Without CUDA it stops at once with a one-line reason and a non-zero exit.
GPU_CHECK_OUT ?= results/gpu_check
gpu-check: setup
	$(PY) -m bench.perf.gpu_check --out $(GPU_CHECK_OUT) $(if $(PRETRAINED_FILE),--pretrained-file $(PRETRAINED_FILE))
