# The two commands a fresh machine needs:  make run   and   make test
# Both install everything first (Debian packages, a virtualenv with pinned packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MONTH  ?= 2026-10
OUT    ?= out
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig poppler-utils

.PHONY: setup run test lint bench sample preview-png clean

setup: .stamp-system .stamp-venv

.stamp-system: scripts/install-system-deps.sh
	scripts/install-system-deps.sh $(DEBIAN_PACKAGES)
	touch $@

.stamp-venv: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev,cluster]'
	touch $@

## Run the batch on the shipped sample month (safe to repeat: a second run changes nothing).
run: setup
	$(BIN)/invoicing run --month $(MONTH) --input sample_data/$(MONTH) --out $(OUT)

## The whole test suite.
test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check invoicing tests sample_data scripts benchmarks
	$(BIN)/mypy

## Rebuild sample_data/2026-10 from its generator.
sample: setup
	$(BIN)/python sample_data/generate.py --out sample_data/$(MONTH)

bench: setup
	$(BIN)/python -m benchmarks.run

## Refresh the README's pictures: first pages of two sample invoices, rendered by pdftoppm.
preview-png: run
	pdftoppm -png -r 80 -f 1 -l 1 -singlefile $(OUT)/2026-10/invoices/IM-202610-000001.pdf docs/sample-invoice-en
	pdftoppm -png -r 80 -f 1 -l 1 -singlefile $(OUT)/2026-10/invoices/IM-202610-000007.pdf docs/sample-invoice-ko

clean:
	rm -rf $(OUT) .stamp-system .stamp-venv $(VENV) .pytest_cache .mypy_cache .ruff_cache
