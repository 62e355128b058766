"""The `invoicing` command: a thin Click layer over `pipeline`.

Every error the library raises on purpose (`InvoicingError`) becomes one line on
stderr and the exit code documented in the README; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from invoicing import __version__, storage
from invoicing.audit.options import checked_issue_date, outside_input
from invoicing.audit.reports import run_summary
from invoicing.cli.heads import EXPECT_HEAD, RETAIN_DAYS, echo_head
from invoicing.core import scratch
from invoicing.core.errors import InvoicingError, VerifyMismatchError
from invoicing.core.timeframe import Month
from invoicing.pipeline import run_month
from invoicing.publish.manifest import retention_end
from invoicing.render.progress import CLUSTER_TIMEOUT
from invoicing.render.renderers import choose_renderer, default_workers
from invoicing.validate.gates import enforce

F = TypeVar("F", bound=Callable[..., Any])



class LocationParam(click.ParamType):
    """A local path (checked like `click.Path`) or a storage URL such as ``s3://bucket/prefix``
    (the schemes of `storage.BACKENDS`)."""

    name = "path"

    def __init__(self, **path_options: Any):
        self._local = click.Path(path_type=Path, **path_options)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        text = os.fspath(value) if isinstance(value, str | os.PathLike) else value
        if isinstance(text, str) and "://" in text:
            try:
                return storage.location(text)
            except storage.StorageError as exc:
                self.fail(str(exc), param, ctx)
        return self._local.convert(value, param, ctx)



class ReportedError(click.ClickException):
    """A library error shown as one line, with its own exit code."""

    def __init__(self, error: InvoicingError):
        super().__init__(str(error))
        # Click reads `exit_code` from the instance to choose the process's exit status.
        self.exit_code = int(error.exit_code)  # type: ignore[misc]


def reports_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        remote = storage.remote_locations(kwargs.values())
        try:
            for where in remote:
                storage.check(where)
            with scratch.sigterm_exits():  # SIGTERM: clean up, then exit 143
                return func(*args, **kwargs)
        except InvoicingError as exc:
            raise ReportedError(exc) from None
        except Exception as exc:
            # With object storage in play, a failing request is a storage error (exit 11).
            if (remote and storage.raised_by_object_storage(exc)
                    and (error := storage.storage_error(exc)) is not None):
                raise ReportedError(error) from None
            raise

    return wrapper  # type: ignore[return-value]


def _parse_month(ctx: click.Context, param: click.Parameter, value: str | None) -> Month:
    if value is None:
        return Month.previous(date.today())
    try:
        return Month.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        logging.getLogger().setLevel(logging.INFO)


def month_inputs(func: F) -> F:
    """Options shared by every command that reads a month's inputs."""
    options = [
        # Also accepted after the command (`invoicing run -v …`), as the README shows it.
        click.option("-v", "--verbose", is_flag=True, expose_value=False, is_eager=True,
                     callback=_verbose, help="Log each stage and its timing to stderr."),
        click.option("--month", callback=_parse_month, metavar="YYYY-MM",
                     help="Billing month. Default: the previous calendar month."),
        click.option("--input", "input_dir", required=True,
                     type=LocationParam(file_okay=False),
                     help="Folder (or s3://bucket/prefix) with the month's exports (usage/, "
                          "apps, customers, subscription_events, pricebook.toml)."),
        click.option("--pricebook", type=LocationParam(dir_okay=False),
                     help="Price book to use instead of <input>/pricebook.toml."),
        click.option("--seller", type=LocationParam(dir_okay=False),
                     help="Seller file (name, address, VAT id, 0 % VAT declarations) printed "
                          "on every document; an input like the others. Default: "
                          "templates/seller.toml."),
        click.option("--on-conflict", type=click.Choice(["error", "max"]), default=None,
                     help="Two different usage rows for one app and day: stop (error) or "
                          "bill the larger value of each metric (max). Default: as the "
                          "month was published (diff, reissue, verify, send), else error. A "
                          "retry of an issued month on identical inputs changes nothing "
                          "either way."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def allow_incomplete_option(func: F) -> F:
    """The override of the month gates, shared by the commands that issue or preview."""
    return click.option(
        "--allow-incomplete", is_flag=True,
        help="Issue the month even if its usage does not look complete (rows mostly outside "
             "the month, days without usage, paid apps without usage). Recorded in the "
             "manifest.")(func)


#: A scheduler address: ``[protocol://]host:port`` (``tcp://scheduler:8786``, ``[::1]:8786``).
_CLUSTER_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}")


def _parse_cluster(ctx: click.Context, param: click.Parameter, value: str | None
                   ) -> str | None:
    if not value:
        return None
    if not _CLUSTER_ADDRESS.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a scheduler address such as "
                                 "tcp://scheduler:8786")
    return value


def render_options(func: F) -> F:
    """Options shared by every command that renders PDFs."""
    func = click.option(
        "--workers", type=click.IntRange(min=1), default=default_workers, show_default="all cores",
        envvar="INVOICING_WORKERS",
        help="Processes rendering PDFs in parallel (also INVOICING_WORKERS).")(func)
    func = click.option(
        "--cluster", metavar="ADDRESS", envvar="INVOICING_CLUSTER", default=None,
        callback=_parse_cluster,
        help="Render on the Dask cluster whose scheduler is at ADDRESS "
             "(e.g. tcp://scheduler:8786; env INVOICING_CLUSTER) instead of local processes. "
             "Needs 'invoicing[cluster]'.")(func)
    func = click.option(
        "--cluster-timeout", metavar="SECONDS", envvar="INVOICING_CLUSTER_TIMEOUT",
        type=click.FloatRange(min=0, min_open=True), default=CLUSTER_TIMEOUT, show_default=True,
        help="With --cluster: stop with exit 12 after SECONDS without a worker (none "
             "joined, every worker or the scheduler lost); env INVOICING_CLUSTER_TIMEOUT.")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="invoicing")
@click.option("-v", "--verbose", is_flag=True, help="Log each stage and its timing to stderr.")
def main(verbose: bool) -> None:
    """Monthly billing batch: usage exports in, PDF invoices and line items out.

    \b
    Example:
      invoicing run --month 2026-10 --input sample_data/2026-10 --out out
    """
    # force: a fresh handler on this invocation's stderr (tests invoke main many times).
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr,
                        force=True)


@main.command()
@month_inputs
@click.option("--out", "out_dir", required=True, type=LocationParam(file_okay=False),
              help="Output root, a folder or s3://bucket/prefix; the month is written to "
                   "<out>/<YYYY-MM>/.")
@render_options
@allow_incomplete_option
@RETAIN_DAYS
@reports_errors
def run(month: Month, input_dir: Path, pricebook: Path | None, seller: Path | None,
        on_conflict: str | None, out_dir: Path, workers: int, cluster: str | None,
        cluster_timeout: float, allow_incomplete: bool, retain_days: int | None) -> None:
    """Compute a month's charges and publish its invoices.

    Writes <out>/<YYYY-MM>/ atomically: a PDF per invoiced customer, line_items.parquet,
    invoices.parquet, rejected_rows.parquet, anomalies.parquet and manifest.json. Safe
    to retry: if the month is already published from identical inputs, nothing changes
    and the exit code is 0; if the inputs differ, it refuses (exit 5). Progress goes to
    stderr: a bar on a terminal, a line per tenth of the invoices otherwise. The last
    line is the month's head ("head: 2026-10 revision 0 sha256 …"): keep it.

    \b
    Example:
      invoicing run --month 2026-10 --input sample_data/2026-10 --out out
    """
    outside_input(input_dir, out_dir, "--out")
    result = run_month(
        input_dir, out_dir, month, pricebook=pricebook, seller=seller,
        on_conflict=on_conflict,  # type: ignore[arg-type]
        render=choose_renderer(workers, cluster, cluster_timeout=cluster_timeout),
        allow_incomplete=allow_incomplete, retain_until=retention_end(retain_days),
    )
    click.echo(run_summary(result))
    echo_head(out_dir, month)


@main.command()
@month_inputs
@click.option("--out", "out_dir", required=True, type=LocationParam(file_okay=False),
              help="Output root holding the published <YYYY-MM>/ folder.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Human-readable text, or JSON for scripts.")
@reports_errors
def diff(month: Month, input_dir: Path, pricebook: Path | None, seller: Path | None,
         on_conflict: str | None, out_dir: Path, fmt: str) -> None:
    """Show what a rerun would change in an issued month. Writes nothing.

    Recomputes the month from --input and compares it with the latest issued revision:
    one row per changed charge with its evidence before and after (plan, peak and its
    day, blocks, tier, days) and both amounts in the currency's format, then one row
    per invoice whose totals changed.

    \b
    Example:
      invoicing diff --month 2026-10 --input sample_data/2026-10 --out out
      invoicing diff --month 2026-10 --input sample_data/2026-10 --out out --format json
    """
    from invoicing.audit.diff import diff_month

    outside_input(input_dir, out_dir, "--out")
    result = diff_month(input_dir, out_dir, month, pricebook,
                        on_conflict, seller=seller)  # type: ignore[arg-type]
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        return
    from invoicing.audit.reports import diff_text

    click.echo(diff_text(result))


@main.command()
@month_inputs
@click.option("--out", "out_dir", required=True, type=LocationParam(file_okay=False),
              help="Output root holding the published <YYYY-MM>/ folder.")
@click.option("--reason", required=True, help="Why the month is reissued (kept in the manifest).")
@click.option("--issue-date", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Date printed on the credit notes and replacements: from the 1st after "
                   "the billed month up to today. Default: today (UTC).")
@EXPECT_HEAD
@render_options
@allow_incomplete_option
@RETAIN_DAYS
@reports_errors
def reissue(month: Month, input_dir: Path, pricebook: Path | None, seller: Path | None,
            on_conflict: str | None, out_dir: Path, reason: str, issue_date: datetime | None,
            expect_head: str | None, workers: int, cluster: str | None,
            cluster_timeout: float, allow_incomplete: bool, retain_days: int | None) -> None:
    """Issue credit notes and replacement invoices for customers whose charges changed.

    Writes <out>/<YYYY-MM>/revisions/NNN/ and leaves every issued file untouched. Each
    changed customer gets a credit note CN-<YYYYMM>-<NNNNNN> reversing its invoice, and
    a replacement invoice whose number continues the month's sequence. The revision's
    manifest records the reason, who ran it, when, and the SHA-256 of the previous
    manifest. The last line is the month's new head; with --expect-head, nothing is
    written (exit 7) unless the month still ends in that head.

    \b
    Example:
      invoicing reissue --month 2026-10 --input sample_data/2026-10 --out out \\
          --reason "usage export for app 1400201 corrected"
    """
    from invoicing.audit.reissue import reissue_month

    outside_input(input_dir, out_dir, "--out")
    result = reissue_month(
        input_dir, out_dir, month, reason=reason,
        render=choose_renderer(workers, cluster, cluster_timeout=cluster_timeout),
        seller=seller, pricebook=pricebook,
        on_conflict=on_conflict,  # type: ignore[arg-type]
        issue_date=checked_issue_date(month, issue_date), allow_incomplete=allow_incomplete,
        expect_head=expect_head, retain_until=retention_end(retain_days),
    )
    if result.path is None:
        click.echo(f"{month.label}: nothing changed since revision {result.diff.revision}; "
                   "nothing written")
        echo_head(out_dir, month)
        return
    click.echo(f"{month.label}: wrote revision {result.revision} to {result.path}")
    for cn, inv in result.credit_notes:
        click.echo(f"  credit note {cn} reverses {inv}")
    for inv, old in result.invoices:
        click.echo(f"  invoice {inv}" + (f" replaces {old}" if old else " (new)"))
    echo_head(out_dir, month)


@main.command()
@month_inputs
@click.option("--out", "out_dir", required=True, type=LocationParam(file_okay=False),
              help="Output root holding the published <YYYY-MM>/ folder.")
@EXPECT_HEAD
@reports_errors
def verify(month: Month, input_dir: Path, pricebook: Path | None, seller: Path | None,
           on_conflict: str | None, out_dir: Path, expect_head: str | None) -> None:
    """Check a published month against its manifest and its inputs.

    Recomputes the month; checks every published file's SHA-256 and protection, that
    no unlisted file sits under the month, the revision chain and its head, the number
    sequences, and every fact printed in more than one place (manifest, Parquet, PDF,
    embedded line items and XML) against the others and the recomputation. Prints OK
    with counts, or one line per mismatch (exit 7); then the head.

    \b
    Example:
      invoicing verify --month 2026-10 --input sample_data/2026-10 --out out \
          --expect-head 0f3c…(the SHA-256 printed by the last run or reissue)
    """
    from invoicing.audit.verify import verify_month

    outside_input(input_dir, out_dir, "--out")
    report = verify_month(input_dir, out_dir, month, pricebook, expect_head, seller=seller,
                          on_conflict=on_conflict)  # type: ignore[arg-type]
    for line in report.lines(month.label):
        click.echo(line)
    if report.ok:
        return
    raise ReportedError(VerifyMismatchError(
        f"{len(report.mismatches)} mismatch(es) in {out_dir / month.label}"))


@main.command()
@month_inputs
@click.option("--drafts", type=click.Path(path_type=Path, file_okay=False),
              help="Also write draft PDFs, marked DRAFT, into this folder.")
@render_options
@allow_incomplete_option
@reports_errors
def preview(month: Month, input_dir: Path, pricebook: Path | None, seller: Path | None,
            on_conflict: str | None, drafts: Path | None, workers: int, cluster: str | None,
            cluster_timeout: float, allow_incomplete: bool) -> None:
    """Compute a month's charges without publishing or using up invoice numbers.

    Works for the month in progress too (charges to date, with --allow-incomplete since
    the days to come have no usage yet). Prints one line per customer with its
    provisional total; --drafts writes DRAFT-marked PDFs.

    \b
    Example:
      invoicing preview --month 2026-10 --input sample_data/2026-10 --drafts /tmp/drafts
    """
    from invoicing.audit.reports import preview_text
    from invoicing.pipeline import compute_month, conflict_policy, write_drafts

    outside_input(input_dir, drafts, "--drafts")
    computed = compute_month(input_dir, month, pricebook,
                             conflict_policy(on_conflict),  # type: ignore[arg-type]
                             seller=seller)
    enforce(list(computed.gate_findings), month, allow_incomplete)
    click.echo(preview_text(computed))
    if drafts is not None:
        render = choose_renderer(workers, cluster, label="drafts", draft=True,
                                 cluster_timeout=cluster_timeout)
        written = write_drafts(computed, drafts, render)
        click.echo(f"  wrote {written} draft PDF(s) to {drafts}")
