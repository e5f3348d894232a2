# cnosdb-jaeger-storage: every set-up step a user or CI needs, from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GEN := cnosdb_jaeger_storage/_gen
PROTOS := $(shell find protos -name '*.proto')

.PHONY: venv protos run test fuzz lint bench e2e clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,test]'
	touch $@

protos: $(GEN)/.stamp

$(GEN)/.stamp: $(PROTOS) scripts/gen_protos.py $(VENV)/.installed
	$(BIN)/python scripts/gen_protos.py --proto-dir protos --out $(GEN)
	touch $@

run: venv protos
	$(BIN)/cnosdb-jaeger-storage $(ARGS)

test: venv protos
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Property-based fuzzing of every way in (tests/test_fuzz.py) with many more examples than `make test` runs.
FUZZ_EXAMPLES ?= 5000
fuzz: venv protos
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py $(PYTEST_ARGS)

lint: venv protos
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: venv protos
	$(BIN)/python -m bench

e2e: venv protos
	$(MAKE) -C e2e all PYTHON=$(abspath $(BIN)/python)

clean:
	rm -rf $(VENV) $(GEN) .pytest_cache
