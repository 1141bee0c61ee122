# The two commands of the README's quick start. Both create .venv on first use and reuse it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.plugtrt-installed
PYTEST_ARGS ?=
# pytest-xdist workers: one per core of the 2-core machines the suite is timed on; `make test
# PYTEST_WORKERS=0` runs in one process (what a debugger or `-x` wants). loadgroup keeps the files
# that share an expensive fixture on one worker (SHARED_SESSION_WORK in tests/conftest.py).
PYTEST_WORKERS ?= 2

.PHONY: demo test docs

$(STAMP): pyproject.toml plugins_example/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[rtx,test,docs,serve,quant]' -e ./plugins_example
	touch $@

demo: $(STAMP)
	$(BIN)/python bench/demo.py

test: $(STAMP)
	PLUGTRT_STRICT_PLUGINS=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The documentation site, built strictly (a warning fails it) into build/site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir build/site
