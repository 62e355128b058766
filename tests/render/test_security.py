"""Hostile customer-controlled strings through the whole batch: no markup, CSS or fetch
reaches the PDF, ids never steer file paths, and outputs are not world-readable."""

from __future__ import annotations

import stat
from io import BytesIO
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from pypdf import PdfReader

from invoicing.cli import main
from tests.builders import INCOMPLETE_OK, MonthBuilder, d

HOSTILE_NAME = '<img src="file:///etc/passwd"><link rel="stylesheet" href="http://e.x/a.css">'
HOSTILE_ADDRESS = 'x { background: url(http://e.x/bg.png) }\n</style><style>*{display:none}'


def hostile_month(root: Path) -> Path:
    b = MonthBuilder()
    b.customer("../../x", name=HOSTILE_NAME, tax_id="<b>TAX</b>")
    b.customers[0]["address"] = HOSTILE_ADDRESS
    b.customers[0]["email"] = '"><script>alert(1)</script>@e.x'
    b.app(1, "../../x", name="url('file:///etc/shadow') & <i>app</i>").day(1, d(1))
    return b.write(root / "in")


def test_hostile_strings_print_as_text_and_ids_do_not_steer_paths(tmp_path: Path) -> None:
    hostile_month(tmp_path)
    out = tmp_path / "deep" / "out"
    result = CliRunner().invoke(main, ["run", "--month", "2026-10", "--input",
                                       str(tmp_path / "in"), "--out", str(out), "--workers", "1",
                                       INCOMPLETE_OK])
    assert result.exit_code == 0, result.output
    # Every file is inside <out>/2026-10 (or its head record beside it) and named by our
    # own numbering.
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == [
        ".2026-10.lock", "2026-10.heads/000.json", "2026-10/anomalies.parquet",
        "2026-10/invoices.parquet",
        "2026-10/invoices/IM-202610-000001.pdf", "2026-10/line_items.parquet",
        "2026-10/manifest.json", "2026-10/rejected_rows.parquet",
    ]
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()
    pdf = (out / "2026-10/invoices/IM-202610-000001.pdf").read_bytes()
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)
    flat = " ".join(text.split())
    for literal in ('<img src="file:///etc/passwd">', 'href="http://e.x/a.css">',
                    "url(http://e.x/bg.png)", "</style><style>*{display:none}",
                    "<script>alert(1)</script>", "<b>TAX</b>",
                    "url('file:///etc/shadow') & <i>app</i>", "../../x"):
        assert literal in flat, literal
    assert "root:" not in text
    # The customer id is data, kept as given.
    assert pl.read_parquet(out / "2026-10/invoices.parquet")["customer_id"].to_list() == [
        "../../x"]


def test_outputs_are_not_world_readable_and_published_files_are_read_only(tmp_path: Path) -> None:
    hostile_month(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--month", "2026-10", "--input",
                                       str(tmp_path / "in"), "--out", str(out), "--workers", "1",
                                       INCOMPLETE_OK])
    assert result.exit_code == 0, result.output
    month = out / "2026-10"
    for path in [month, *month.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & stat.S_IRWXO == 0, (path, oct(mode))
        assert mode == (0o750 if path.is_dir() else 0o440), (path, oct(mode))
