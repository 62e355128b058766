"""The delivery commands, `send` and `status`: a thin Click layer over `invoicing.deliver`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from invoicing.cli.commands import (
    LocationParam,
    ReportedError,
    _parse_month,
    main,
    month_inputs,
    reports_errors,
)
from invoicing.core.timeframe import Month


def _parse_smtp(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if not value:
        return None
    from invoicing.core.errors import UsageError
    from invoicing.deliver.smtp import parse_url

    try:
        return parse_url(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc).removeprefix("--smtp ")) from None


@main.command()
@month_inputs
@click.option("--out", "out_dir", required=True, type=LocationParam(file_okay=False),
              help="Output root holding the published <YYYY-MM>/ folder; the delivery ledger "
                   "is kept beside it in <YYYY-MM>.delivery/.")
@click.option("--smtp", "server", metavar="URL", envvar="INVOICING_SMTP_URL",
              callback=_parse_smtp,
              help="SMTP server: smtp://[user@]host[:port] (STARTTLS) or smtps://… (TLS); "
                   "also INVOICING_SMTP_URL. The password comes from INVOICING_SMTP_PASSWORD.")
@click.option("--dry-run", "dry_run", type=click.Path(path_type=Path, file_okay=False),
              help="Write each message as DIR/<number>.eml instead of sending it; records "
                   "nothing.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="At most this many messages per second. Default: no limit.")
@click.option("--attempts", type=click.IntRange(min=1), default=5, show_default=True,
              help="Attempts per document when the server refuses temporarily (4xx) or "
                   "the connection drops.")
@click.option("--retry-delay", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds before the first retry; each further retry waits twice as long "
                   "(at most 300 s).")
@reports_errors
def send(month: Month, input_dir: Path, pricebook: Path | None, seller: Path | None,
         on_conflict: str | None, out_dir: Path, server: Any, dry_run: Path | None,
         rate: float | None, attempts: int, retry_delay: float) -> None:
    """E-mail every document of a published month that has not been delivered yet.

    Sends one message per document to the customer's e-mail, in the customer's language,
    with the PDF (and any e-invoice file beside it) attached: the invoices of the first
    run, then for each revision its credit notes before its replacement invoices. A
    month that 'invoicing verify' does not pass is not sent (exit 7). Every attempt is
    recorded in <out>/<YYYY-MM>.delivery/ before and after it; a rerun sends only what
    is not recorded as accepted, and a message resent after a crash keeps its
    Message-ID. Exit 14 when some documents were not accepted (listed in the summary;
    'invoicing status' shows each document).

    \b
    Example:
      python -m aiosmtpd -n -l 127.0.0.1:8025 &     # a local test server
      invoicing send --month 2026-10 --input sample_data/2026-10 --out out \\
          --smtp smtp://127.0.0.1:8025
      invoicing send --month 2026-10 --input sample_data/2026-10 --out out --dry-run /tmp/mail
    """
    from invoicing.deliver.messages import TEMPLATES_DIR, load_sender
    from invoicing.deliver.send import Policy, send_month
    from invoicing.deliver.smtp import DeliveryError
    from invoicing.deliver.status import send_summary

    if server is None and dry_run is None:
        raise click.UsageError("give the SMTP server with --smtp URL (or INVOICING_SMTP_URL), "
                               "or --dry-run DIR")
    report = send_month(
        input_dir, out_dir, month, sender=load_sender(seller or TEMPLATES_DIR / "seller.toml"),
        server=None if dry_run else server, dry_run=dry_run, pricebook=pricebook, seller=seller,
        on_conflict=on_conflict,  # type: ignore[arg-type]  # Click's Choice: error or max
        policy=Policy(attempts=attempts, delay=retry_delay, rate=rate))
    click.echo(send_summary(month, report))
    if not report.complete:
        undelivered = len(report.failed) + len(report.not_attempted) + len(report.busy)
        raise ReportedError(DeliveryError(
            f"{month.label}: {undelivered} document(s) not delivered; fix what the summary "
            "names, then run 'invoicing send' again (it sends only those)"))


@main.command()
@click.option("--month", callback=_parse_month, metavar="YYYY-MM",
              help="Billing month. Default: the previous calendar month.")
@click.option("--out", "out_dir", required=True, type=LocationParam(file_okay=False),
              help="Output root holding the published <YYYY-MM>/ folder.")
@reports_errors
def status(month: Month, out_dir: Path) -> None:
    """Show each document of a published month as issued, sent, failed or in flight.

    Read from the delivery ledger that 'invoicing send' keeps in
    <out>/<YYYY-MM>.delivery/: per document its kind, revision, customer, attempts, the
    recipient, the time of its last record and the server's reply. Writes nothing.

    \b
    Example:
      invoicing status --month 2026-10 --out out
    """
    from invoicing.deliver.status import month_status, status_text

    click.echo(status_text(month, month_status(out_dir, month)))
