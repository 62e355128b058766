"""Options and output of the head and retention (README, "The head and retention")."""

from __future__ import annotations

from pathlib import Path

import click

from invoicing.core.timeframe import Month
from invoicing.publish.issued import IssuedMonth

#: `run`, `reissue`: write once on object storage.
RETAIN_DAYS = click.option(
    "--retain-days", type=click.IntRange(min=1), envvar="INVOICING_RETAIN_DAYS",
    default=None, metavar="N",
    help="s3:// outputs only: every published object under S3 Object Lock (compliance "
         "mode) for N days, which the store enforces (also INVOICING_RETAIN_DAYS); the "
         "bucket must have Object Lock enabled.")


def echo_head(out_dir: Path, month: Month) -> None:
    """The month's head, as the last line: keep it (README, "The head")."""
    click.echo(IssuedMonth(out_dir, month).head().line())


EXPECT_HEAD = click.option(
    "--expect-head", metavar="SHA256", default=None,
    help="Fail (exit 7) unless the month's head (the latest manifest's SHA-256, printed "
         "by run and reissue) is exactly this one.")

__all__ = ["EXPECT_HEAD", "RETAIN_DAYS", "echo_head"]
