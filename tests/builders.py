"""Small input months written from Python literals, for rule and CLI tests.

`MonthBuilder` writes a complete ``--input`` folder: usage Parquet with the exact
schema of SPEC §2, the three tables and a price book. Tests change one thing and
check the exact outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner, Result

from benchmarks.synth import pricebook_version
from invoicing.cli import main
from invoicing.core.errors import ExitCode

USAGE_SCHEMA = pa.schema([
    ("sdk_app_id", pa.int64()),
    ("date", pa.date32()),
    ("dau", pa.int64()),
    ("group_count", pa.int64()),
    ("live_group_count", pa.int64()),
])
APPS_SCHEMA = pa.schema([("sdk_app_id", pa.int64()), ("customer_id", pa.string()),
                         ("app_name", pa.string())])
EVENTS_SCHEMA = pa.schema([("sdk_app_id", pa.int64()), ("effective_date", pa.date32()),
                           ("item", pa.string()), ("value", pa.string())])
CUSTOMER_COLUMNS = ["customer_id", "name", "email", "address", "country", "currency", "locale",
                    "tax_id"]

#: The price-book versions of the tests: USD@2026-01-01 and KRW@2026-01-01 of the sample
#: month's price book (the project's one price-book fixture), with ``{policy}`` for
#: ``plan_fee_policy``.
PRICEBOOK_USD = pricebook_version("USD", "2026-01-01", policy="{policy}")
PRICEBOOK_KRW = pricebook_version("KRW", "2026-01-01", policy="{policy}")


def d(day: int, month: int = 10, year: int = 2026) -> date:
    return date(year, month, day)


@dataclass
class MonthBuilder:
    """An input month in memory; `write(folder)` lays it out on disk."""

    usage: list[tuple[Any, ...]] = field(default_factory=list)
    apps: list[tuple[Any, ...]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    pricebook: str = PRICEBOOK_USD.format(policy="month_start")

    def customer(self, customer_id: str, *, currency: str = "USD", country: str = "US",
                 locale: str = "en_US", name: str | None = None, tax_id: str | None = None,
                 **optional: str | None) -> MonthBuilder:
        """One customer; ``optional`` sets optional columns (``postcode``, ``city``,
        ``einvoice_format``, ...), which the table then has for every customer."""
        self.customers.append({
            "customer_id": customer_id, "name": name or f"Customer {customer_id}",
            "email": f"{customer_id}@example.com", "address": "1 Main St\nSpringfield",
            "country": country, "currency": currency, "locale": locale, "tax_id": tax_id,
            **optional,
        })
        return self

    def app(self, app_id: int, customer_id: str, plan: str | None = "pro",
            since: date = date(2026, 1, 1), name: str | None = None) -> MonthBuilder:
        self.apps.append((app_id, customer_id, name or f"App {app_id}"))
        if plan is not None:
            self.events.append((app_id, since, "plan", plan))
        return self

    def event(self, app_id: int, when: date, item: str, value: str) -> MonthBuilder:
        self.events.append((app_id, when, item, value))
        return self

    def day(self, app_id: int, when: date, dau: int = 10, groups: int = 10,
            live: int | None = None) -> MonthBuilder:
        self.usage.append((app_id, when, dau, groups, live))
        return self

    def write(self, folder: Path, usage_files: int = 1) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        usage_dir = folder / "usage"
        usage_dir.mkdir(exist_ok=True)
        chunks: list[list[tuple[Any, ...]]] = [[] for _ in range(usage_files)]
        for i, row in enumerate(self.usage):
            chunks[i % usage_files].append(row)
        for i, chunk in enumerate(chunks):
            sub = usage_dir / f"part={i}"
            sub.mkdir(exist_ok=True)
            _write(sub / "usage.parquet", chunk, USAGE_SCHEMA)
        _write(folder / "apps.parquet", self.apps, APPS_SCHEMA)
        _write(folder / "subscription_events.parquet", self.events, EVENTS_SCHEMA)
        columns = CUSTOMER_COLUMNS + sorted({c for row in self.customers for c in row}
                                            - set(CUSTOMER_COLUMNS))
        table = pa.table({c: [row.get(c) for row in self.customers] for c in columns},
                         schema=pa.schema([(c, pa.string()) for c in columns]))
        pq.write_table(table, folder / "customers.parquet")
        (folder / "pricebook.toml").write_text(self.pricebook, encoding="utf-8")
        return folder


def _write(path: Path, rows: list[tuple[Any, ...]], schema: pa.Schema) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    table = pa.table({f.name: pa.array(list(col), type=f.type)
                      for f, col in zip(schema, columns, strict=True)}, schema=schema)
    pq.write_table(table, path)


#: Hand-built months cover a few days of a few apps, which the month gates rightly
#: refuse; the CLI tests of other behaviours pass this, and tests/validate/test_month_gates.py tests
#: the gates themselves without it.
INCOMPLETE_OK = "--allow-incomplete"


def run_cli(input_dir: Path, out: Path, *extra: str, gates: bool = False) -> Result:
    """`invoicing run` on October 2026 through Click's test runner, on one worker.

    With ``gates=False`` (the default) the month gates are overridden (`INCOMPLETE_OK`).
    """
    return CliRunner().invoke(
        main, ["run", "--month", "2026-10", "--input", str(input_dir), "--out", str(out),
               "--workers", "1", *([] if gates else [INCOMPLETE_OK]), *extra]
    )


def assert_stopped(result: Result, code: ExitCode, message: str, out: Path) -> None:
    """The run stopped with `code` and exactly one line, and wrote nothing."""
    assert result.exit_code == code, result.output
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not (out / "2026-10").exists()
    assert not list(out.glob(".2026-10.tmp-*"))
