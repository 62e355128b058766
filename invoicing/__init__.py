"""Monthly billing batch for an instant-messaging cloud service.

The package reads like the pipeline it runs:

    load -> validate -> pricing -> assemble -> render -> publish

``pipeline.py`` runs the stages in that order; ``cli.py`` is a thin Click layer over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("invoicing")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
