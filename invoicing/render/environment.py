"""What the PDF bytes depend on besides the document: the renderer's environment.

The same `InvoiceDocument` gives the same PDF bytes only on the same stack: the same
invoicing code, WeasyPrint and pydyf (layout and PDF writing), HarfBuzz and whether its
subsetter is installed (font subsets), and the same bundled fonts and templates. The
manifest records these facts for every run, and a cluster run (`render_cluster`) refuses
workers whose facts differ from the coordinator's, so a month rendered on a cluster is
byte-identical to one rendered locally, and says on what it was rendered.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
from functools import cache
from pathlib import Path

from invoicing.core.paths import TEMPLATES_DIR

#: The keys of `renderer_environment`, in the order the manifest prints them.
KEYS = ("invoicing", "software_sha256", "weasyprint", "pydyf", "harfbuzz", "harfbuzz_subset",
        "fonts_sha256", "templates_sha256")

#: The package's own folder (code and catalogues) and the templates beside it.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Byte-code and caches: rebuilt from the code, not part of it.
_NOT_CODE = ("__pycache__",)


def folder_digest(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """SHA-256 over every file below `folder` (relative path and content hash, sorted).

    ``skip`` leaves out top-level sub-folders: the fonts have their own digest, and the
    e-mail templates (`invoicing.deliver`) shape no PDF byte. Byte-code caches are
    always left out.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if relative.parts[0] in skip:
            continue
        if any(part in _NOT_CODE for part in relative.parts) or path.suffix == ".pyc":
            continue
        digest.update(f"{relative.as_posix()}\t{_file_sha256(path)}\n".encode())
    return digest.hexdigest()


@cache
def software_digest() -> str:
    """The software's identity: SHA-256 over the package's own code and data (every file
    of ``invoicing/``, its catalogues included, and of ``templates/``). A version string
    stays the same across changes; this does not."""
    digest = hashlib.sha256()
    for name, folder in (("invoicing", PACKAGE_DIR), ("templates", TEMPLATES_DIR)):
        digest.update(f"{name}\t{folder_digest(folder)}\n".encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def harfbuzz_version() -> str:
    """The version of the HarfBuzz library WeasyPrint's text layout loads."""
    from weasyprint.text import ffi  # noqa: F401  (loads libharfbuzz the way WeasyPrint does)

    for name in ("libharfbuzz.so.0", ctypes.util.find_library("harfbuzz")):
        if not name:
            continue
        try:
            function = ctypes.CDLL(name).hb_version_string
        except (OSError, AttributeError):
            continue
        function.restype = ctypes.c_char_p
        version: bytes = function()
        return version.decode()
    return "unknown"


@cache
def renderer_environment() -> dict[str, str | bool]:
    """The facts of this process that decide the PDF bytes (computed once per process)."""
    import pydyf
    import weasyprint
    from weasyprint.text.ffi import harfbuzz_subset

    from invoicing import __version__
    return {
        "invoicing": __version__,
        "software_sha256": software_digest(),
        "weasyprint": weasyprint.__version__,
        "pydyf": pydyf.__version__,
        "harfbuzz": harfbuzz_version(),
        "harfbuzz_subset": bool(harfbuzz_subset),
        "fonts_sha256": folder_digest(TEMPLATES_DIR / "fonts"),
        "templates_sha256": folder_digest(TEMPLATES_DIR, skip=("fonts", "email")),
    }


def fingerprint(environment: dict[str, str | bool]) -> str:
    """A short digest of an environment, sent back with every PDF a worker renders."""
    text = json.dumps(environment, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(here: dict[str, str | bool], there: dict[str, str | bool]) -> list[str]:
    """``key: value here, value there`` for every fact that differs (digests shortened)."""
    def shown(value: str | bool | None) -> str:
        text = str(value)
        return text[:12] + "…" if len(text) > 16 else text

    return [f"{key} {shown(here.get(key))} here, {shown(there.get(key))} there"
            for key in KEYS if here.get(key) != there.get(key)]
