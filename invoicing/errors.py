"""Errors that reach the user as one clear line, and the exit codes a scheduler sees.

Following beancount, an error carries its source (file, column, row) so the user can
find the bad value without a traceback. `cli.py` turns these into
`click.ClickException`s with the matching exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every `invoicing` command (documented in the README)."""

    OK = 0
    UNEXPECTED = 1  # a bug or an environment failure: the traceback is printed
    USAGE = 2  # Click's own code for a bad command line
    INPUT_ERROR = 3  # a structural problem in the inputs or the price book; nothing written
    USAGE_CONFLICT = 4  # two different usage rows for the same app and day
    ALREADY_PUBLISHED = 5  # the month exists and the inputs differ: use diff / reissue
    LOCKED = 6  # another process holds the month's lock
    VERIFY_MISMATCH = 7  # verify found a difference
    CLUSTER_UNAVAILABLE = 10  # the Dask cluster could not be reached or was lost; nothing written
    CLUSTER_MISMATCH = 11  # a cluster worker runs another renderer environment; nothing written


@dataclass(frozen=True)
class Source:
    """Where a bad value was found.

    Attributes:
      file: path of the input file, relative to the input folder when possible.
      column: the column name, or None when the problem is the whole file.
      row: 1-based data row number (the CSV header is not counted), or None.
    """

    file: str
    column: str | None = None
    row: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        return ", ".join(parts)


class InvoicingError(Exception):
    """Base class of the errors the CLI reports as one line."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class InputError(InvoicingError):
    """A structural problem in the inputs: the run stops before anything is written."""

    exit_code = ExitCode.INPUT_ERROR

    def __init__(self, source: Source | str, message: str):
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class ConflictError(InvoicingError):
    """Different usage rows for the same app and day (SPEC §2)."""

    exit_code = ExitCode.USAGE_CONFLICT


class AlreadyPublishedError(InvoicingError):
    """The month is already published from other inputs."""

    exit_code = ExitCode.ALREADY_PUBLISHED


class LockedError(InvoicingError):
    """Another process is working on the same month."""

    exit_code = ExitCode.LOCKED


class VerifyMismatchError(InvoicingError):
    """`verify` found published files that do not match."""

    exit_code = ExitCode.VERIFY_MISMATCH


class ClusterUnavailableError(InvoicingError):
    """The Dask cluster (`--cluster`) could not be reached, had no worker, or was lost
    mid-run. Nothing is published; rerunning once the cluster is back completes."""

    exit_code = ExitCode.CLUSTER_UNAVAILABLE


class ClusterMismatchError(InvoicingError):
    """A cluster worker runs another invoicing, WeasyPrint or HarfBuzz version or other
    bundled fonts or templates, so its PDFs could differ from a local run's."""

    exit_code = ExitCode.CLUSTER_MISMATCH
