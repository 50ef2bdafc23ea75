# The README's two commands. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint native clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ferry demo

# Rebuild the compiled kernels after changing ferry/runtime/kernels/native/*.c (fails loudly;
# `pip install` treats them as optional and goes on without them when they do not build).
native: $(STAMP)
	$(BIN)/python setup.py -q build_ext --inplace --force

lint: $(STAMP)
	$(BIN)/ruff check ferry tests tools

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf $(VENV) .cache build *.egg-info
