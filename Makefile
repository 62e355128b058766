# The two commands a fresh machine needs:  make run   and   make test
# Both install everything first (Debian packages, a virtualenv with pinned packages).
# `make help` lists every target with the line of comment above it.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MONTH  ?= 2026-10
OUT    ?= out
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fontconfig poppler-utils

.PHONY: help setup run test test-e2e test-all lint bench sample sample-fixed preview-png clean-out clean

## List the targets with what each does.
help:
	@awk '/^## /{doc=substr($$0, 4); next} /^[a-z][a-z-]*:/{if (doc) {split($$0, t, ":"); printf "  make %-13s %s\n", t[1], doc}; doc=""} !/^## /{if (!/^[a-z][a-z-]*:/) doc=""}' $(MAKEFILE_LIST)

## Install the Debian packages and the virtualenv (.venv/) with the pinned packages.
setup: .stamp-system .stamp-venv

.stamp-system: scripts/install-system-deps.sh
	scripts/install-system-deps.sh $(DEBIAN_PACKAGES)
	touch $@

.stamp-venv: pyproject.toml requirements.lock scripts/make-venv.sh
	scripts/make-venv.sh $(PYTHON) $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev,cluster]'
	touch $@

## Run the batch on the shipped sample month (safe to repeat: a second run changes nothing).
run: setup
	$(BIN)/invoicing run --month $(MONTH) --input sample_data/$(MONTH) --out $(OUT)

## The test suite, end-to-end files apart (tests/ but tests/e2e/; about a minute on 2 cores).
test: setup
	$(BIN)/pytest -q -n auto --dist load --ignore=tests/e2e

## The end-to-end files: S3 (moto), Dask, SMTP, crashes, TMPDIR, the README walk-through.
test-e2e: setup
	$(BIN)/pytest -q -n auto --dist loadfile tests/e2e

## Both: what CI runs before the linters.
test-all: test test-e2e

## ruff and mypy over the package, tests, scripts and benchmarks.
lint: setup
	$(BIN)/ruff check invoicing tests sample_data scripts benchmarks
	$(BIN)/mypy

## Rebuild sample_data/2026-10 from its generator.
sample: setup
	$(BIN)/python sample_data/generate.py --out sample_data/$(MONTH)

## Pricing and PDF benchmarks (about 4 minutes; see BENCHMARKS.md).
bench: setup
	$(BIN)/python -m benchmarks.run

## Write sample_data/2026-10-fixed, the corrected export of the README's reprocessing walk-through.
sample-fixed: setup
	$(BIN)/python sample_data/correct_export.py

## Refresh the README's pictures: first pages of sample invoices in en, ko, zh (prorated) and an EU one, by pdftoppm.
preview-png: run
	pdftoppm -png -r 80 -f 1 -l 1 -singlefile $(OUT)/2026-10/invoices/IM-202610-000001.pdf docs/sample-invoice-en
	pdftoppm -png -r 80 -f 1 -l 1 -singlefile $(OUT)/2026-10/invoices/IM-202610-000006.pdf docs/sample-invoice-ko
	pdftoppm -png -r 80 -f 1 -l 1 -singlefile $(OUT)/2026-10/invoices/IM-202610-000010.pdf docs/sample-invoice-zh
	pdftoppm -png -r 80 -f 1 -l 1 -singlefile $(OUT)/2026-10/invoices/IM-202610-000016.pdf docs/sample-invoice-eu

## Remove what the batch and the walk-through wrote (out/, out-reprocess/, the corrected export); keeps .venv/.
clean-out:
	rm -rf $(OUT) out-reprocess sample_data/2026-10-fixed

## Remove everything built, the virtualenv included (the next make reinstalls it).
clean: clean-out
	rm -rf .stamp-system .stamp-venv $(VENV) .pytest_cache .mypy_cache .ruff_cache
