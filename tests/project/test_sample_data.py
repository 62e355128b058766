"""The committed sample month is exactly what `sample_data/generate.py` produces."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO / "sample_data"
COMMITTED = SAMPLE_DATA / "2026-10"


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "2026-10"
    subprocess.run([sys.executable, str(SAMPLE_DATA / "generate.py"), "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_generate", SAMPLE_DATA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_same_files(generated: Path) -> None:
    assert files_under(generated) == files_under(COMMITTED)


@pytest.mark.parametrize("relative", [f for f in files_under(COMMITTED) if f.endswith(".parquet")])
def test_parquet_tables_reproduce(generated: Path, relative: str) -> None:
    def read(root: Path) -> pl.DataFrame:
        return pl.read_parquet(root / relative, hive_partitioning=False)

    assert_frame_equal(read(generated), read(COMMITTED))
    assert pq.read_schema(generated / relative) == pq.read_schema(COMMITTED / relative)


@pytest.mark.parametrize("name", ["pricebook.toml", "customers.csv"])
def test_text_files_reproduce(generated: Path, name: str) -> None:
    assert (generated / name).read_text(encoding="utf-8") == (
        COMMITTED / name).read_text(encoding="utf-8")


def test_input_schemas() -> None:
    usage = [p for p in (COMMITTED / "usage").rglob("*.parquet")]
    assert len(usage) > 1
    for path in usage:
        schema = pl.read_parquet_schema(path)
        assert schema == {"sdk_app_id": pl.Int64, "date": pl.Date, "dau": pl.Int64,
                          "group_count": pl.Int64, "live_group_count": pl.Int64}, path
    assert pl.read_parquet_schema(COMMITTED / "apps.parquet") == {
        "sdk_app_id": pl.Int64, "customer_id": pl.String, "app_name": pl.String}
    assert pl.read_parquet_schema(COMMITTED / "subscription_events.parquet") == {
        "sdk_app_id": pl.Int64, "effective_date": pl.Date, "item": pl.String,
        "value": pl.String}
    customers = pl.read_csv(COMMITTED / "customers.csv", infer_schema=False)
    assert customers.columns == ["customer_id", "name", "email", "address", "country",
                                 "currency", "locale", "tax_id", "postcode", "city",
                                 "buyer_reference", "einvoice_format", "peppol_scheme",
                                 "peppol_id", "mandate_reference"]
    assert customers["address"].str.contains("\n").any()
    assert customers["tax_id"].null_count() > 0


def test_readme_lists_every_scenario(generator: ModuleType) -> None:
    readme = (SAMPLE_DATA / "README.md").read_text(encoding="utf-8")
    for scenario in generator.SCENARIOS:
        assert str(scenario.sdk_app_id) in readme, scenario.sdk_app_id
