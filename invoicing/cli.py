"""The `invoicing` command: a thin Click layer over `pipeline`.

Every error the library raises on purpose (`InvoicingError`) becomes one line on
stderr and the exit code documented in the README; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
import tomllib
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from invoicing import __version__
from invoicing.documents import InvoiceDocument
from invoicing.errors import InvoicingError
from invoicing.pipeline import RunResult, run_month
from invoicing.timeframe import Month

F = TypeVar("F", bound=Callable[..., Any])

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class ReportedError(click.ClickException):
    """A library error shown as one line, with its own exit code."""

    def __init__(self, error: InvoicingError):
        super().__init__(str(error))
        # Click reads `exit_code` from the instance to choose the process's exit status.
        self.exit_code = int(error.exit_code)  # type: ignore[misc]


def reports_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InvoicingError as exc:
            raise ReportedError(exc) from None

    return wrapper  # type: ignore[return-value]


def _parse_month(ctx: click.Context, param: click.Parameter, value: str | None) -> Month:
    if value is None:
        return Month.previous(date.today())
    try:
        return Month.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def month_inputs(func: F) -> F:
    """Options shared by every command that reads a month's inputs."""
    options = [
        click.option("--month", callback=_parse_month, metavar="YYYY-MM",
                     help="Billing month. Default: the previous calendar month."),
        click.option("--input", "input_dir", required=True,
                     type=click.Path(path_type=Path, file_okay=False),
                     help="Folder with the month's exports (usage/, apps, customers, "
                          "subscription_events, pricebook.toml)."),
        click.option("--pricebook", type=click.Path(path_type=Path, dir_okay=False),
                     help="Price book to use instead of <input>/pricebook.toml."),
        click.option("--on-conflict", type=click.Choice(["error", "max"]), default="error",
                     show_default=True,
                     help="Two different usage rows for one app and day: stop (error) or "
                          "bill the larger value of each metric (max)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_seller(templates_dir: Path = TEMPLATES_DIR) -> tuple[str, ...]:
    """The seller block's lines, from ``templates/seller.toml``."""
    with (templates_dir / "seller.toml").open("rb") as fh:
        data = tomllib.load(fh)
    lines = [data["name"], *str(data.get("address", "")).strip().splitlines()]
    if data.get("tax_id"):
        lines.append(str(data["tax_id"]))
    if data.get("email"):
        lines.append(str(data["email"]))
    return tuple(line for line in lines if line)


def sequential_renderer() -> Callable[[Iterator[InvoiceDocument]], Iterator[tuple[str, bytes]]]:
    def render(docs: Iterator[InvoiceDocument]) -> Iterator[tuple[str, bytes]]:
        from invoicing.render import InvoiceRenderer

        renderer = InvoiceRenderer()
        for doc in docs:
            yield doc.invoice_number, renderer.render_pdf(doc)

    return render


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="invoicing")
@click.option("-v", "--verbose", is_flag=True, help="Log each stage and its timing to stderr.")
def main(verbose: bool) -> None:
    """Monthly billing batch: usage exports in, PDF invoices and line items out.

    \b
    Example:
      invoicing run --month 2026-10 --input sample_data/2026-10 --out out
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


@main.command()
@month_inputs
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output root; the month is written to <out>/<YYYY-MM>/.")
@reports_errors
def run(month: Month, input_dir: Path, pricebook: Path | None, on_conflict: str,
        out_dir: Path) -> None:
    """Compute a month's charges and publish its invoices.

    Writes <out>/<YYYY-MM>/ atomically: a PDF per invoiced customer, line_items.parquet,
    invoices.parquet, rejected_rows.parquet, anomalies.parquet and manifest.json. Safe
    to retry: if the month is already published from identical inputs, nothing changes
    and the exit code is 0; if the inputs differ, it refuses (exit 5).

    \b
    Example:
      invoicing run --month 2026-10 --input sample_data/2026-10 --out out
    """
    result = run_month(
        input_dir, out_dir, month, pricebook=pricebook,
        on_conflict=on_conflict,  # type: ignore[arg-type]
        render=sequential_renderer(), seller=load_seller(),
    )
    click.echo(summary(result))


def summary(result: RunResult) -> str:
    m = result.manifest
    counts = m["counts"]
    if result.status == "unchanged":
        head = (f"{m['month']}: already issued from identical inputs "
                f"(run {m['run_id']}); nothing changed in {result.month_dir}")
    else:
        head = f"{m['month']}: published {result.month_dir} (run {m['run_id']})"
    lines = [
        head,
        f"  customers invoiced: {counts['invoices']} of {counts['customers']} "
        f"({counts['zero_total_customers']} with a zero total, no invoice)",
    ]
    for currency, t in m["totals"].items():
        lines.append(f"  total {currency}: {t['total']} (subtotal {t['subtotal']}, "
                     f"tax {t['tax']}, {t['invoices']} invoices)")
    lines.append(
        f"  usage rows: {counts['usage_rows_in']} read, {counts['usage_rows_billed']} billed, "
        f"{counts['usage_duplicates_collapsed']} duplicates collapsed, "
        f"{counts['usage_conflicts_merged']} conflicts merged, "
        f"{counts['usage_rows_rejected']} rejected (rejected_rows.parquet)"
    )
    lines.append(f"  anomalies: {counts['anomalies']} (anomalies.parquet)")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
