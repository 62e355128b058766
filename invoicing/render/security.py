"""What WeasyPrint may read while rendering an invoice: files inside the templates folder.

Customer data is untrusted. Every template is autoescaped, and WeasyPrint fetches
resources only through `TemplatesOnlyFetcher`, so an address holding
``<img src="file:///etc/passwd">`` prints as text and a stylesheet can never reach the
network or a file outside ``templates/``.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse


class ResourceRefusedError(ValueError):
    """WeasyPrint asked for a resource outside the templates folder."""


class TemplatesOnlyFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that serves only files inside one folder.

    WeasyPrint 70 expects a `URLFetcher` instance (it reads ``_fail_on_errors``
    from it), so this subclasses it and replaces `fetch`. Everything that is not
    a ``file:`` URL resolving, after symlinks and ``..`` are resolved, to a file
    under ``root`` is refused: ``http(s):``, ``data:``, ``file:///etc/passwd``,
    ``fonts/../../secret``. ``fail_on_errors`` makes a refused or missing
    resource stop the rendering instead of printing a PDF with a fallback font
    or a missing logo.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file",), fail_on_errors=True)
        self.root = root.resolve()

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """Return the file behind ``url`` or raise `ResourceRefusedError`."""
        path = self.resolve(url)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            url=path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )

    def resolve(self, url: str) -> Path:
        """Map an allowed ``file:`` URL to its real path inside the root, or raise."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "file":
            raise ResourceRefusedError(f"refused non-file URL: {url}")
        if parts.netloc not in ("", "localhost"):
            raise ResourceRefusedError(f"refused file URL on another host: {url}")
        path = Path(url2pathname(parts.path)).resolve()  # url2pathname percent-decodes
        if not path.is_relative_to(self.root):
            raise ResourceRefusedError(f"refused file outside {self.root}: {url}")
        if not path.is_file():
            raise ResourceRefusedError(f"no such template resource: {url}")
        return path
