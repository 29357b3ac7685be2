# Two entry points for a fresh machine with only Python 3.11+ and pip:
#   make demo   -> set up .venv and run the main job on a bundled sample chain
#   make test   -> set up .venv and run the whole test suite
# Works from any directory: make -C /path/to/volsurf demo
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLE := $(ROOT)/sample_chains/spx_2026-07-31_close.csv
DEMO_OUT ?= $(ROOT)/demo_report

.PHONY: demo test setup lint bench clean bytecode

$(STAMP): $(ROOT)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e "$(ROOT)[dev]"
	$(MAKE) --no-print-directory -C $(ROOT) bytecode
	touch $(STAMP)

# An editable install does not byte-compile the package; where PYTHONDONTWRITEBYTECODE is set, every command
# would then compile each module it imports again (about 0.1 s per command).
bytecode:
	$(PY) -m compileall -q $(ROOT)/volsurf > /dev/null

setup: $(STAMP)

demo: $(STAMP) bytecode
	cd $(ROOT) && $(VENV)/bin/volsurf report $(SAMPLE) -o $(DEMO_OUT)

test: $(STAMP)
	cd $(ROOT) && $(PY) -m pytest

lint: $(STAMP)
	cd $(ROOT) && $(VENV)/bin/ruff check . && $(VENV)/bin/mypy && $(VENV)/bin/lint-imports

bench: $(STAMP)
	cd $(ROOT) && status=0; for b in benchmarks/bench_*.py; do $(PY) $$b || status=1; done; exit $$status

clean:
	rm -rf $(VENV) $(DEMO_OUT)
