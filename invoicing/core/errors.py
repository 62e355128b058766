"""Errors that reach the user as one clear line, and the exit codes a scheduler sees.

Following beancount, an error carries its source (file, column, row) so the user can
find the bad value without a traceback. `cli.py` turns these into
`click.ClickException`s with the matching exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    MONTH_INCOMPLETE = 8  # the usage does not look like the whole month (gates); nothing written
    OUTPUT_UNAVAILABLE = 9  # --out cannot be created or written
    NOT_PUBLISHED = 10  # diff / verify / reissue of a month that was never published
    STORAGE = 11  # object storage unreachable, refused, missing a bucket or failing
    CLUSTER_UNAVAILABLE = 12  # the Dask cluster could not be reached or was lost; nothing written
    CLUSTER_MISMATCH = 13  # a cluster worker runs another renderer environment; nothing written
    NOT_DELIVERED = 14  # send: some documents not accepted (see the ledger); a rerun sends them


@dataclass(frozen=True)
class Retry:
    """Whether running the same command again, unchanged, can succeed.

    Attributes:
      helps: True when the cause can go away by itself (a lock released, a store or a
        cluster back); False when a person must change something first (a bug, the
        inputs, the command line, the image).
      why: the reason, as the README's exit-code table prints it.
    """

    helps: bool
    why: str


#: What a retry can fix, per exit code: the one table that README's exit-code table and
#: the Kubernetes example's ``podFailurePolicy`` follow (`tests/project/test_deployment.py`
#: compares the three). A bug (1) is not retried: a rerun renders the month again for
#: the same traceback.
RETRY: dict[ExitCode, Retry] = {
    ExitCode.UNEXPECTED: Retry(False, "no: a bug or a broken environment; a rerun fails the "
                                      "same way"),
    ExitCode.USAGE: Retry(False, "no: fix the command line"),
    ExitCode.INPUT_ERROR: Retry(False, "no: fix the inputs"),
    ExitCode.USAGE_CONFLICT: Retry(False, "no: fix the export, or decide on "
                                          "`--on-conflict max`"),
    ExitCode.ALREADY_PUBLISHED: Retry(False, "no: use `diff` and `reissue`"),
    ExitCode.LOCKED: Retry(True, "yes: once the other process has finished"),
    ExitCode.VERIFY_MISMATCH: Retry(False, "no: a person investigates"),
    ExitCode.MONTH_INCOMPLETE: Retry(False, "no: complete the exports, or decide on "
                                            "`--allow-incomplete`"),
    ExitCode.OUTPUT_UNAVAILABLE: Retry(False, "no: fix `--out` or its rights"),
    ExitCode.NOT_PUBLISHED: Retry(False, "no: run the month first"),
    ExitCode.STORAGE: Retry(True, "yes: once the store answers again (a wrong bucket or "
                                  "credentials fail again)"),
    ExitCode.CLUSTER_UNAVAILABLE: Retry(True, "yes: once the cluster is back"),
    ExitCode.CLUSTER_MISMATCH: Retry(False, "no: run one image everywhere"),
    ExitCode.NOT_DELIVERED: Retry(True, "yes: it sends only what was not accepted (an "
                                        "address refused for good is refused again)"),
}


def retryable(helps: bool) -> list[int]:
    """The exit codes a retry can fix (`helps`) or cannot, in ascending order."""
    return sorted(int(code) for code, retry in RETRY.items() if retry.helps == helps)


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


#: At most this many input errors are printed; the rest are counted.
MAX_REPORTED_ERRORS = 50


def _file_order(error: InputError) -> tuple[str, int, str]:
    source = error.source
    if isinstance(source, Source):
        return (source.file, source.row or 0, source.column or "")
    return (str(source), 0, "")


class InputErrors(InputError):
    """Several input errors found in one run, reported together like a compiler does.

    Attributes:
      errors: every error found, in file order (file, row, column).
    """

    def __init__(self, errors: Iterable[InputError], uncounted: int = 0):
        self.errors = sorted(errors, key=_file_order)
        self.uncounted = uncounted
        shown = [str(e) for e in self.errors[:MAX_REPORTED_ERRORS]]
        rest = len(self.errors) - len(shown) + uncounted
        if rest:
            shown.append(f"... and {rest} more input error(s) not shown")
        InvoicingError.__init__(self, "\n".join(shown))
        self.source = self.errors[0].source
        self.message = "\n".join(shown)


class ErrorLog:
    """Collects input errors so that one run reports all of them (exit 3).

    A stage calls `add` for every problem it finds and goes on with what it can still
    check; `raise_if_any` stops the run at the end of the stage.
    """

    def __init__(self) -> None:
        self.errors: list[InputError] = []
        #: Errors found in bulk (bad values in a large usage file) beyond those recorded.
        self.uncounted = 0

    def count_more(self, n: int) -> None:
        """Count `n` more errors that are not recorded one by one (none if n <= 0)."""
        self.uncounted += max(0, n)

    def add(self, source: Source | str, message: str) -> None:
        self.errors.append(InputError(source, message))

    def add_error(self, error: InputError) -> None:
        if isinstance(error, InputErrors):
            self.errors.extend(error.errors)
            self.uncounted += error.uncounted
        else:
            self.errors.append(error)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1 and not self.uncounted:
            raise self.errors[0]
        if self.errors:
            raise InputErrors(self.errors, self.uncounted)


class UsageError(InvoicingError):
    """A bad command-line value the option parser could not catch (exit 2, like Click)."""

    exit_code = ExitCode.USAGE


class MonthIncompleteError(InvoicingError):
    """The usage does not look like the month being billed (a month gate failed)."""

    exit_code = ExitCode.MONTH_INCOMPLETE


class OutputUnavailableError(InvoicingError):
    """The output folder cannot be created or written."""

    exit_code = ExitCode.OUTPUT_UNAVAILABLE


class NotPublishedError(InvoicingError):
    """A command that needs a published month found none."""

    exit_code = ExitCode.NOT_PUBLISHED


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
