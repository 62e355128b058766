"""The record of a month computed up to its assembled frames, before rendering.

`pipeline.compute_month` builds it; the manifest, `diff`, `reissue` and `verify` read it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from invoicing.assemble.totals import Assembled
from invoicing.core.timeframe import Month
from invoicing.load.inputs import Inputs
from invoicing.load.pricebook import PriceBookVersion
from invoicing.validate.gates import Finding
from invoicing.validate.usage import OnConflict, ValidUsage


@dataclass(frozen=True)
class Computed:
    """A month's charges, computed but not rendered or published.

    Attributes:
      month: the billing month.
      inputs: what was read.
      usage: the accounting of every usage row and the rejected rows. Its billable rows
        (``usage.usage``) are let go once priced and checked, the largest frame of a
        run: here it is an empty frame with their columns.
      versions: the price-book versions used, one per currency in use.
      assembled: line items and invoices (``pdf_sha256`` still null).
      anomalies: R9 findings.
      inputs_digest: SHA-256 over the input files' paths and hashes (price book included).
      run_id: ``<YYYYMM>-<first 12 hex digits of inputs_digest>``: the same inputs give
        the same id, so the documents that print it stay reproducible.
      on_conflict: the conflict policy the month was computed with.
      plan_periods: each app's plans over the month (sdk_app_id, plan, start, end),
        for the plan story the invoices print.
      gate_findings: the month gates that failed (`gates.check_month`); `run`, `reissue`
        and `preview` refuse the month on any, unless told ``--allow-incomplete``.
      unprintable: (invoice_number, customer_id, characters) for each document whose
        buyer name or address holds characters no bundled font has.
    """

    month: Month
    inputs: Inputs
    usage: ValidUsage
    versions: list[PriceBookVersion]
    assembled: Assembled
    anomalies: pl.DataFrame
    inputs_digest: str
    run_id: str
    on_conflict: OnConflict
    plan_periods: pl.DataFrame
    gate_findings: tuple[Finding, ...] = ()
    unprintable: pl.DataFrame | None = None


def inputs_digest(inputs: Inputs) -> str:
    digest = hashlib.sha256()
    for f in inputs.files:
        digest.update(f"{f.path}\t{f.sha256}\n".encode())
    return digest.hexdigest()
