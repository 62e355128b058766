"""The `invoicing` command: a thin Click layer over the pipeline.

* `commands`: the command group, the options the commands share, how a library error
  becomes one line and its exit code, and the commands that compute and publish a month
  (`run`, `preview`, `diff`, `reissue`, `verify`);
* `delivery`: the commands that deliver a published month (`send`, `status`).
"""

from invoicing.cli import delivery  # noqa: F401  (registers send and status on main)
from invoicing.cli.commands import ReportedError, main
from invoicing.core.paths import TEMPLATES_DIR

__all__ = ["TEMPLATES_DIR", "ReportedError", "main"]
