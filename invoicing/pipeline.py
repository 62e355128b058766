"""Runs the stages in order, timing each one (like beancount's loader).

    load -> validate -> pricing -> entitlements -> assemble -> render -> publish

`compute_month` runs everything up to assembled frames and is shared by every command
that needs the month's charges (run, verify, diff, preview); `run_month` adds rendering
and the atomic publish. Pricing reduces the daily usage to each app's monthly peaks
first; the entitlements (R9) read the daily usage next, and it is let go before the
line items are made.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from invoicing import __version__
from invoicing.assemble.computed import Computed, inputs_digest
from invoicing.assemble.document_builder import build_documents
from invoicing.assemble.totals import Assembled, assemble
from invoicing.core.documents import InvoiceDocument
from invoicing.core.errors import AlreadyPublishedError, ErrorLog
from invoicing.core.money import known_currencies
from invoicing.core.timeframe import Month
from invoicing.core.timing import StageTimer
from invoicing.entitlements import find_anomalies
from invoicing.load.inputs import load_inputs
from invoicing.pricing import monthly_peaks, price_month
from invoicing.pricing.models import MODELS
from invoicing.pricing.states import plan_days, plan_periods_frame, subscriptions
from invoicing.publish.issued import IssuedMonth
from invoicing.publish.locking import month_lock
from invoicing.publish.manifest import manifest_for, retention_entry
from invoicing.render.coverage import check_locales, unprintable_names
from invoicing.render.einvoice import check_month as check_einvoices
from invoicing.render.einvoice import issued_formats, seller_from, with_beside_files
from invoicing.render.progress import RenderFn, StoringRenderer
from invoicing.storage import (
    Staging,
    check_retention,
    content_key,
    is_committed,
    open_staging,
    remove_stale_staging,
)
from invoicing.validate.gates import check_month, enforce
from invoicing.validate.tables import (
    check_apps,
    check_customers,
    check_events,
    check_price_coverage,
)
from invoicing.validate.usage import OnConflict, validate_usage

log = logging.getLogger("invoicing")


def conflict_policy(flag: OnConflict | None, published: dict[str, Any] | None = None
                    ) -> OnConflict:
    """The one reading of ``--on-conflict`` for every command: the flag when given, else
    the policy the month was published with (`published` is its latest manifest), else
    ``error``. `run` does not need it for a retry: a month already issued from identical
    inputs is unchanged whatever the flag."""
    if flag is not None:
        return flag
    recorded = (published or {}).get("options", {}).get("on_conflict")
    return "max" if recorded == "max" else "error"


def compute_month(input_dir: Path, month: Month, pricebook: Path | None = None,
                  on_conflict: OnConflict = "error", timer: StageTimer | None = None, *,
                  seller: Path | None = None) -> Computed:
    """load -> validate -> pricing -> entitlements -> assemble.

    `seller` is the seller file (default ``templates/seller.toml``), an input like the
    price book.
    """
    timer = timer or StageTimer()
    with timer.stage("load"):
        inputs = load_inputs(input_dir, pricebook, seller, models=MODELS)
    with timer.stage("validate"):
        # Every problem of the tables and the usage values is collected and reported
        # together (exit 3), like a compiler's errors.
        errors = ErrorLog()
        labels = inputs.table_paths
        check_customers(inputs.customers, labels["customers"], errors)
        check_locales(inputs.customers, labels["customers"], errors)
        check_apps(inputs.apps, inputs.customers, labels["apps"], errors)
        # An unknown currency is already reported by check_customers.
        currencies = sorted(set(inputs.customers["currency"].drop_nulls().unique().to_list())
                            & known_currencies())
        chosen = {c: inputs.pricebook.select(c, month.start) for c in currencies}
        check_price_coverage(inputs.customers, chosen, labels["pricebook"], month, errors)
        versions = [v for v in chosen.values() if v is not None]
        events = check_events(inputs.events, inputs.apps, inputs.customers, chosen,
                              labels["subscription_events"], month, errors)
        usage = validate_usage(inputs, month, on_conflict, errors)
        errors.raise_if_any()
    with timer.stage("pricing"):
        subs = subscriptions(events, month)
        plan_segments = subs.segments.filter(pl.col("item") == "plan")
        gate_findings = tuple(check_month(usage, plan_segments, month))
        usage_with_plan = plan_days(usage.usage, subs)
        # All the overage needs from the daily usage: a few numbers per app.
        peaks = monthly_peaks(usage_with_plan)
    with timer.stage("entitlements"):
        month_start = [v.currency for v in versions if v.plan_fee_policy == "month_start"]
        month_start_apps = inputs.apps.join(
            inputs.customers.select("customer_id", "currency"), on="customer_id"
        ).filter(pl.col("currency").is_in(month_start))["sdk_app_id"]
        anomalies = find_anomalies(usage_with_plan, subs, inputs.apps, month, month_start_apps)
        # The billable rows (with their plan per day) are the largest frames of the run,
        # and everything that reads them is done: they go before the line items are
        # made, so that the two are never held at once. The Computed keeps their
        # accounting and the rejected rows (`Computed.usage`).
        del usage_with_plan
        usage = dataclasses.replace(usage, usage=usage.usage.clear())
    with timer.stage("pricing"):
        lines = price_month(peaks, inputs.apps, inputs.customers, subs, versions, month)
    with timer.stage("assemble"):
        assembled = assemble(lines, inputs.customers, versions, month)
        del lines
        # Which e-invoice each document carries is kept with it (a credit note repeats it).
        invoices = assembled.invoices
        assembled = Assembled(assembled.line_items, invoices.drop("einvoice_format").join(
            issued_formats(inputs.customers), on="customer_id", how="left",
        ).select(invoices.columns))
    digest = inputs_digest(inputs)
    numbered = assembled.invoices.filter(pl.col("invoice_number").is_not_null())
    unprintable = numbered.select("invoice_number", "customer_id").join(
        unprintable_names(inputs.customers.join(numbered, on="customer_id", how="semi")),
        on="customer_id")
    return Computed(
        month=month, inputs=inputs, usage=usage, versions=versions, assembled=assembled,
        anomalies=anomalies, inputs_digest=digest, run_id=f"{month.compact}-{digest[:12]}",
        on_conflict=on_conflict, plan_periods=plan_periods_frame(subs),
        gate_findings=gate_findings,
        unprintable=unprintable,
    )


def einvoice_seller(computed: Computed) -> Any:
    """The e-invoice facts of the run's seller file."""
    return seller_from(computed.inputs.seller.data, computed.inputs.seller.label)


def documents(computed: Computed, seller: tuple[str, ...] | None = None
              ) -> Iterator[InvoiceDocument]:
    """The month's documents; `seller` overrides the seller block's lines (tests)."""
    return build_documents(
        computed.assembled, computed.inputs.customers, computed.inputs.apps, computed.versions,
        computed.month, run_id=computed.run_id, inputs_digest=computed.inputs_digest,
        software_version=__version__, seller=seller or computed.inputs.seller.lines,
        seller_file=computed.inputs.seller.text, plan_periods=computed.plan_periods,
    )


@dataclass(frozen=True)
class RunResult:
    """What `run_month` did.

    Attributes:
      status: ``published`` or ``unchanged`` (already published from identical inputs).
      month_dir: the published folder.
      manifest: the manifest of the published month.
      timer: stage timings of this process.
      reused: documents an earlier unfinished run had staged with the same content key,
        taken instead of rendered again.
    """

    status: str
    month_dir: Path
    manifest: dict[str, Any]
    timer: StageTimer
    reused: int = 0


def _identical(existing: dict[str, Any], computed_digest: str) -> bool:
    """The published month was computed from these very inputs. The conflict policy does
    not matter: identical inputs give the published month whatever a retry's flag says."""
    return bool(existing.get("inputs_digest") == computed_digest)


def run_month(
    input_dir: Path,
    out_dir: Path,
    month: Month,
    *,
    pricebook: Path | None = None,
    on_conflict: OnConflict | None = None,
    render: RenderFn,
    seller: Path | None = None,
    allow_incomplete: bool = False,
    retain_until: datetime | None = None,
) -> RunResult:
    """Compute, render and publish a month; safe to retry.

    If the month is already published from identical inputs, nothing is written and the
    status is ``unchanged``; if it was published from other inputs, `AlreadyPublishedError`.
    With `retain_until`, every published object is under Object Lock until then (a store
    that cannot do it is refused before anything is written).
    """
    timer = StageTimer()
    if retain_until is not None:
        check_retention(out_dir)
    with month_lock(out_dir, month):
        month_dir = out_dir / month.label
        remove_stale_staging(out_dir, month.label)
        if is_committed(month_dir):
            # A retry only needs the inputs' hashes to know whether anything changed.
            existing = IssuedMonth(out_dir, month).latest().manifest
            with timer.stage("load"):
                digest = inputs_digest(load_inputs(input_dir, pricebook, seller, models=MODELS))
            if _identical(existing, digest):
                return RunResult("unchanged", month_dir, existing, timer)
            raise AlreadyPublishedError(
                f"{month_dir} was already issued from other inputs "
                f"(inputs digest {existing.get('inputs_digest', '?')[:12]} there, "
                f"{digest[:12]} now). Nothing was changed. Use "
                f"'invoicing diff' to see what changed and 'invoicing reissue' to issue "
                "credit notes and replacement invoices."
            )
        # A month whose heads were recorded but that is gone was deleted: publishing it
        # again would spend its numbers a second time.
        IssuedMonth(out_dir, month).check_recorded_heads()
        computed = compute_month(input_dir, month, pricebook, conflict_policy(on_conflict), timer,
                                 seller=seller)
        enforce(list(computed.gate_findings), month, allow_incomplete)
        check_einvoices(computed.inputs.customers, computed.assembled.invoices,
                        computed.inputs.table_paths["customers"], einvoice_seller(computed))
        # Everything in the manifest but the hashes of the outputs is known now: on object
        # storage its content key names where the month's objects go.
        known = manifest_for(computed, {}, timer, allow_incomplete)
        if retain_until is not None:
            known["retention"] = retention_entry(retain_until)
        staging = open_staging(out_dir, month.label, key=content_key(known),
                               retain_until=retain_until)
        try:
            with timer.stage("render"):
                reused = staging.reusable("invoices/")
                pdf_hashes = {name[len("invoices/"):-len(".pdf")]: sha
                              for name, sha in reused.items() if name.endswith(".pdf")}
                if reused:
                    log.warning("%s: reusing %d document(s) staged by an earlier unfinished "
                                "run with the same inputs and software", month.label,
                                len(reused))
                _render_into(staging, render, computed, pdf_hashes)
            with timer.stage("publish"):
                invoices = computed.assembled.invoices.with_columns(
                    pdf_sha256=pl.col("invoice_number").replace_strict(
                        pdf_hashes, default=None, return_dtype=pl.String)
                )
                staging.write_parquet("line_items.parquet", computed.assembled.line_items)
                staging.write_parquet("invoices.parquet", invoices)
                staging.write_parquet("rejected_rows.parquet", computed.usage.rejected)
                staging.write_parquet("anomalies.parquet", computed.anomalies)
                manifest = manifest_for(computed, dict(staging.hashes), timer, allow_incomplete)
                if retain_until is not None:
                    manifest["retention"] = retention_entry(retain_until)
                staging.write_manifest(manifest)
                final = staging.commit()
        except BaseException:
            staging.discard()
            raise
        IssuedMonth(out_dir, month).record_head(retain_until)
        return RunResult("published", final, manifest, timer, reused=len(reused))


def _render_into(staging: Staging, render: RenderFn, computed: Computed,
                 pdf_hashes: dict[str, str]) -> None:
    """Render every invoice not in `pdf_hashes` into `staging`, adding its SHA-256. With a
    cluster and object storage the workers write the PDFs themselves; otherwise each
    PDF comes back here and is written to the staging area."""
    # A Peppol customer's XML goes beside its PDF (invoices/<number>.xml), written here for
    # every document (also one whose PDF an earlier run left): it costs no rendering.
    docs = (doc for doc in with_beside_files(documents(computed), staging.write_bytes,
                                             einvoice_seller(computed))
            if doc.invoice_number not in pdf_hashes)
    total = int(computed.assembled.invoices["invoice_number"].is_not_null().sum())
    total -= len(pdf_hashes)
    target = staging.worker_target()
    if target is not None and isinstance(render, StoringRenderer):
        for number, sha256, _ in render.store(docs, total, f"{target}/invoices"):
            pdf_hashes[number] = staging.record(f"invoices/{number}.pdf", sha256)
        return
    for number, pdf in render(docs, total):
        pdf_hashes[number] = staging.write_bytes(f"invoices/{number}.pdf", pdf)


def write_drafts(computed: Computed, folder: Path, render: RenderFn) -> int:
    """Render the month's documents as DRAFT PDFs into `folder` (``preview --drafts``):
    nothing is published and no number is used up. Returns how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = int(computed.assembled.invoices["invoice_number"].is_not_null().sum())
    for number, pdf in render(documents(computed), total):
        (folder / f"DRAFT-{number}.pdf").write_bytes(pdf)
    return total
