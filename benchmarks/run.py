"""Benchmark the billing batch and write ``benchmarks/results/latest.md``.

    python -m benchmarks.run                         # small, medium, large (31M usage rows)
    python -m benchmarks.run --sizes small,medium    # skip the 31M-row month
    python -m benchmarks.run --quick                 # smoke run: tiny month, few PDFs
    python -m benchmarks.run --no-pdf | --no-pricing | --no-cluster | --no-s3
    python -m benchmarks.run --no-pdf --no-pricing   # the cluster section alone

Pricing section: for each size a synthetic month (`benchmarks.synth`) is generated in a
temporary folder; then, each in its own child process so that peak RSS belongs to one
measurement, (a) the invoicing path without PDFs (`compute_month` + writing
``line_items.parquet`` and ``invoices.parquet``), with its per-stage times, and (b) the
DuckDB baseline (`benchmarks.duckdb_baseline`) run over the same files. Totals per
currency (and the usage/line counts) of the two must be equal; if they differ the run
exits with status 1 after writing the report. If ``sample_data/2026-10`` exists, it is
checked the same way.

PDF section: invoices per second for a one-page invoice per locale (and for the three
locales interleaved, "mix") with the project's
`InvoiceRenderer` on 1 worker and on all cores, and a naive baseline (fresh
``weasyprint.HTML(...).write_pdf()`` per invoice with system Noto CJK fonts; Debian
``fonts-noto-cjk`` is installed first if missing).

Object storage section: `benchmarks.s3_bench` on the medium month: peak RSS of the month
computed from a moto S3 server on 127.0.0.1 against the same month from the local folder.

The report opens with issue 24's targets as measured in the run (large month against
DuckDB, S3 against local), and the pricing section ends with the cost per usage row at
each size.

Cluster section: `benchmarks.cluster_bench` in a child process: invoices per second of
the en/ko/zh mix on a local Dask cluster (``dask scheduler`` and 1, then 2, ``dask worker``
processes on 127.0.0.1) next to the local pool of 2 processes, with the coordinator's CPU
time per invoice and the bytes moved per invoice.

Wall times are the measured work inside the child (interpreter start-up and imports
excluded; the process time including them is shown too). Peak RSS is the child's
``ru_maxrss`` from ``os.wait4`` (the largest process of a pool for the PDF runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.pdf_bench import LOCALES, MIX

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "latest.md"
SAMPLE = REPO / "sample_data" / "2026-10"
MONTH = "2026-10"


@dataclass(frozen=True)
class Size:
    name: str
    apps: int
    customers: int


SIZES: dict[str, Size] = {
    s.name: s for s in (
        Size("tiny", 1_000, 100),
        Size("small", 10_000, 1_000),
        Size("medium", 100_000, 10_000),
        Size("large", 1_000_000, 100_000),
    )
}
DEFAULT_SIZES = "small,medium,large"


@dataclass
class ChildRun:
    """One child process: its JSON result, wall time and peak RSS seen from outside."""

    argv: list[str]
    returncode: int
    wall: float
    max_rss: int
    result: dict[str, Any] | None
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None


@dataclass
class PricingRow:
    label: str
    generated: dict[str, Any] | None
    invoicing: ChildRun
    duckdb: ChildRun
    equal: bool
    problems: list[str] = field(default_factory=list)
    invoicing_runs: list[ChildRun] = field(default_factory=list)
    duckdb_runs: list[ChildRun] = field(default_factory=list)
    #: The totals-only DuckDB baseline (no line items, nothing written).
    duckdb_totals: ChildRun | None = None
    duckdb_totals_runs: list[ChildRun] = field(default_factory=list)


# --- child processes ----------------------------------------------------------------------


def run_child(args: Sequence[str], workdir: Path, json_out: bool = True) -> ChildRun:
    """Run ``python <args> [--json FILE]``; measure wall time and peak RSS (`os.wait4`)."""
    fd, name = tempfile.mkstemp(prefix="result-", suffix=".json", dir=workdir)
    os.close(fd)
    result_path = Path(name)
    argv = [sys.executable, *args] + (["--json", str(result_path)] if json_out else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile(dir=workdir) as out, tempfile.TemporaryFile(dir=workdir) as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    result: dict[str, Any] | None = None
    try:
        text = result_path.read_text(encoding="utf-8") if json_out else stdout
        result = json.loads(text) if text.strip() else None
    except (OSError, json.JSONDecodeError):
        result = None
    finally:
        result_path.unlink(missing_ok=True)
    return ChildRun(argv=argv, returncode=proc.returncode, wall=wall,
                    max_rss=usage.ru_maxrss * 1024, result=result, stderr=stderr[-4000:])


def _best(runs: list[ChildRun]) -> ChildRun:
    """The fastest successful run, with the largest peak RSS of all repeats."""
    good = [r for r in runs if r.ok] or runs
    best = min(good, key=lambda r: (r.result or {}).get("seconds", r.wall))
    best.max_rss = max(r.max_rss for r in runs)
    return best


# --- equality -----------------------------------------------------------------------------


def _decimal_totals(totals: dict[str, dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    return {
        cur: {k: Decimal(str(v)) for k, v in row.items()} for cur, row in totals.items()
    }


COMPARED_COUNTS = ("rows_in", "billed", "duplicates", "conflicts_merged", "rejected",
                   "line_items", "customers")


def compare(invoicing: dict[str, Any], duck: dict[str, Any], name: str = "duckdb"
            ) -> list[str]:
    """Differences between the two results (empty when equal): totals per currency, the
    usage and line counts and, when the baseline wrote line items, the number of lines
    and the sum of their amounts per (currency, item)."""
    problems = []
    a, b = _decimal_totals(invoicing["totals"]), _decimal_totals(duck["totals"])
    for cur in sorted(set(a) | set(b)):
        if a.get(cur) != b.get(cur):
            problems.append(f"{cur}: invoicing {a.get(cur)} != {name} {b.get(cur)}")
    for key in COMPARED_COUNTS:
        if invoicing["counts"].get(key) != duck["counts"].get(key):
            problems.append(f"count {key}: invoicing {invoicing['counts'].get(key)} != "
                            f"{name} {duck['counts'].get(key)}")
    if "item_sums" in duck:
        ours, theirs = _decimal_totals(invoicing["item_sums"]), _decimal_totals(duck["item_sums"])
        for key in sorted(set(ours) | set(theirs)):
            if ours.get(key) != theirs.get(key):
                problems.append(f"line items {key}: invoicing {ours.get(key)} != "
                                f"{name} {theirs.get(key)}")
    return problems


# --- sections -----------------------------------------------------------------------------


def measure_month(label: str, input_dir: Path, workdir: Path, repeat: int,
                  generated: dict[str, Any] | None) -> PricingRow:
    inv_runs: list[ChildRun] = []
    duck_runs: list[ChildRun] = []
    totals_runs: list[ChildRun] = []
    for _ in range(repeat):
        for what, runs in (("pricing", inv_runs), ("duckdb", duck_runs),
                           ("duckdb-totals", totals_runs)):
            run = run_child(["-m", "benchmarks.measure", what, "--input", str(input_dir),
                             "--month", MONTH], workdir)
            runs.append(run)
            status = "ok" if run.ok else f"FAILED (exit {run.returncode})"
            print(f"  {label}: {what:13s} {run.wall:8.2f} s  {_mib(run.max_rss)}  {status}",
                  file=sys.stderr, flush=True)
    inv, duck, duck_totals = _best(inv_runs), _best(duck_runs), _best(totals_runs)
    problems: list[str] = []
    for name, run in (("invoicing", inv), ("duckdb", duck), ("duckdb-totals", duck_totals)):
        if not run.ok:
            problems.append(f"{name} failed (exit {run.returncode}): "
                            f"{run.stderr.strip().splitlines()[-1:]}")
    for name, other in (("duckdb", duck), ("duckdb-totals", duck_totals)):
        if inv.ok and other.ok:
            assert inv.result is not None and other.result is not None
            problems += compare(inv.result, other.result, name)
    return PricingRow(label, generated, inv, duck, equal=not problems, problems=problems,
                      invoicing_runs=inv_runs, duckdb_runs=duck_runs,
                      duckdb_totals=duck_totals, duckdb_totals_runs=totals_runs)


def pricing_section(sizes: list[Size], workdir: Path, repeat: int, seed: int, keep: bool,
                    check_sample: bool) -> list[PricingRow]:
    rows = []
    if check_sample and SAMPLE.is_dir():
        print(f"sample month {SAMPLE.relative_to(REPO)}", file=sys.stderr, flush=True)
        rows.append(measure_month("sample 2026-10", SAMPLE, workdir, 1, None))
    for size in sizes:
        month_dir = workdir / f"month-{size.name}"
        shutil.rmtree(month_dir, ignore_errors=True)
        print(f"generating {size.name}: {size.apps:,} apps, {size.customers:,} customers",
              file=sys.stderr, flush=True)
        gen = run_child(["-m", "benchmarks.synth", "--out", str(month_dir), "--apps",
                         str(size.apps), "--customers", str(size.customers), "--seed",
                         str(seed), "--month", MONTH], workdir, json_out=False)
        if not gen.ok:
            raise SystemExit(f"generating {size.name} failed:\n{gen.stderr}")
        generated = dict(gen.result or {})
        generated.update(wall=gen.wall, max_rss=gen.max_rss)
        print(f"  {size.name}: {generated['usage_rows']:,} usage rows in "
              f"{generated['usage_files']} files, {gen.wall:.1f} s, {_mib(gen.max_rss)}",
              file=sys.stderr, flush=True)
        rows.append(measure_month(size.name, month_dir, workdir, repeat, generated))
        if not keep:
            shutil.rmtree(month_dir, ignore_errors=True)
    return rows


def ensure_noto_cjk() -> str:
    """Install Debian fonts-noto-cjk for the naive baseline if missing; say what is used."""
    def matched() -> str:
        try:
            return subprocess.run(["fc-match", "Noto Sans CJK KR"], capture_output=True,
                                  text=True, check=False).stdout.strip()
        except OSError:
            return "fc-match not available"

    if "Noto Sans CJK" not in matched():
        print("installing fonts-noto-cjk for the naive PDF baseline", file=sys.stderr)
        script = REPO / "scripts" / "install-system-deps.sh"
        done = subprocess.run([str(script), "fonts-noto-cjk"], check=False)
        if done.returncode != 0:
            print("  could not install fonts-noto-cjk; the naive baseline uses fallback fonts",
                  file=sys.stderr)
    return matched()


def pdf_section(workdir: Path, count: int, naive_count: int) -> tuple[list[dict[str, Any]], str]:
    font = ensure_noto_cjk()
    rows = []
    cores = os.cpu_count() or 1
    for locale in (*LOCALES, MIX):
        row: dict[str, Any] = {"locale": locale}
        # The mix row interleaves the three locales: whole rounds of three invoices.
        n, n_naive = (_round_up(count, 3), _round_up(naive_count, 3)) if locale == MIX else (
            count, naive_count)
        for key, args in (
            ("one", ["renderer", "--workers", "1", "--count", str(n)]),
            ("all", ["renderer", "--workers", str(cores), "--count", str(n * cores)]),
            ("naive", ["naive", "--count", str(n_naive)]),
            ("naive_tpl", ["naive-template", "--count", str(n_naive)]),
        ):
            run = run_child(["-m", "benchmarks.pdf_bench", *args, "--locale", locale], workdir)
            if not run.ok:
                raise SystemExit(f"PDF benchmark {key} {locale} failed:\n{run.stderr}")
            assert run.result is not None
            row[key] = run.result | {"max_rss": run.max_rss, "wall": run.wall}
            print(f"  pdf {locale} {key:5s} {run.result['per_second']:7.2f} invoices/s  "
                  f"{_mib(run.max_rss)}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows, font


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# --- report -------------------------------------------------------------------------------


def _mib(n: int | float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _s(x: float) -> str:
    return f"{x:,.2f}" if x < 100 else f"{x:,.0f}"


def _work(best: dict[str, Any], runs: list[ChildRun]) -> str:
    """Best work time, with the range over repeats when there were several."""
    times = [r.result["seconds"] for r in runs if r.ok and r.result]
    text = _s(best.get("seconds", float("nan")))
    if len(times) > 1:
        text += f" ({_s(min(times))}–{_s(max(times))})"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "invoicing"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (invoicing/ has uncommitted changes)" if dirty else "")


def environment(argv: list[str]) -> list[str]:
    rows = [
        ("date", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("command", f"`{shlex.join(['python', '-m', 'benchmarks.run', *argv])}`"),
        ("git", _git()),
        ("nproc", os.cpu_count()),
        ("CPU", _cpu_model()),
        ("memory", _memory()),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("polars", _version("polars")),
        ("pyarrow", _version("pyarrow")),
        ("duckdb", _version("duckdb")),
        ("weasyprint", _version("weasyprint")),
    ]
    return ["## Environment", "", *_table(["", ""], rows)]


STAGES = ("load", "validate", "pricing", "entitlements", "assemble", "write")


def pricing_report(rows: list[PricingRow]) -> list[str]:
    out = ["## Pricing path (no PDFs) vs DuckDB", "",
           "Invoicing = `compute_month` + writing `line_items.parquet` and `invoices.parquet`. "
           "DuckDB = `benchmarks/duckdb_baseline.py` over the same files, in two forms. "
           "*Both write their outputs* (`compute_outputs`, the equivalent): the same line "
           "items with their evidence (descriptions, peak value and first day, quotas, "
           "activity, trial end, price-book version ...), invoice numbers, both Parquet "
           "files written with `COPY ... TO` and the same codec. *Totals only* "
           "(`compute_totals`, the first baseline): charges summed per customer, nothing "
           "per line kept, nothing written. Neither computes the R9 anomalies, hence the "
           "ratio without the entitlements stage. Line counts and the sum per (currency, "
           "item) of the written line items must equal ours. *Work* excludes interpreter "
           "start-up and imports (fastest of the repeats, range in brackets); *process* "
           "includes them. Peak RSS per child process (largest over the repeats).", ""]
    gen_rows = [
        (r.label, f"{g['apps']:,}", f"{g['customers']:,}", f"{g['events']:,}",
         f"{g['usage_rows']:,}", g["usage_files"], _s(g["wall"]), _mib(g["max_rss"]))
        for r in rows if (g := r.generated)
    ]
    if gen_rows:
        out += ["### Synthetic months", ""]
        out += _table(["size", "apps", "customers", "events", "usage rows", "usage files",
                       "generate (s)", "generate peak RSS"], gen_rows)
    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:.2f}×" if a and b else "n/a"

    table = []
    for r in rows:
        inv, duck = r.invoicing.result or {}, r.duckdb.result or {}
        totals_run = r.duckdb_totals
        tot = (totals_run.result if totals_run else None) or {}
        stages = inv.get("stages", {})
        secs = inv.get("seconds", 0.0)
        priced = secs - stages.get("entitlements", 0.0)
        rss_ratio = (f"{r.invoicing.max_rss / r.duckdb.max_rss:.1f}×"
                     if r.duckdb.max_rss else "n/a")
        table.append((
            r.label, f"{inv.get('counts', {}).get('rows_in', 0):,}",
            _work(inv, r.invoicing_runs), _s(r.invoicing.wall), _mib(r.invoicing.max_rss),
            _work(duck, r.duckdb_runs), _s(r.duckdb.wall), _mib(r.duckdb.max_rss),
            _work(tot, r.duckdb_totals_runs) if tot else "n/a",
            ratio(secs, duck.get("seconds")), ratio(priced, duck.get("seconds")),
            ratio(secs, tot.get("seconds")), ratio(priced, tot.get("seconds")),
            rss_ratio, "yes" if r.equal else "**NO**",
        ))
    out += ["### Wall time and memory", ""]
    out += _table(["month", "usage rows", "invoicing work (s)", "invoicing process (s)",
                   "invoicing peak RSS", "DuckDB work, both write their outputs (s)",
                   "DuckDB process (s)", "DuckDB peak RSS", "DuckDB work, totals only (s)",
                   "invoicing/DuckDB, both write their outputs",
                   "same without entitlements", "invoicing/DuckDB, totals only",
                   "same without entitlements (totals only)", "RSS invoicing/DuckDB",
                   "totals and line items equal"], table)
    stage_rows = []
    for r in rows:
        stages = (r.invoicing.result or {}).get("stages", {})
        total = sum(stages.values()) or 1.0
        stage_rows.append((r.label, *(f"{_s(stages.get(s, 0.0))} ({stages.get(s, 0.0) / total:.0%})"
                                      for s in STAGES), _s(total)))
    out += ["### Invoicing per stage (s, share)", ""]
    out += _table(["month", *STAGES, "total"], stage_rows)
    out += growth_report([r for r in rows if r.generated])
    tot_rows = []
    for r in rows:
        inv_totals = (r.invoicing.result or {}).get("totals", {})
        for cur, t in sorted(inv_totals.items()):
            tot_rows.append((r.label, cur, f"{t['invoices']:,}", t["subtotal"], t["tax"],
                             t["total"], "yes" if r.equal else "**NO**"))
    out += ["### Totals per currency (invoicing; DuckDB identical where marked)", ""]
    out += _table(["month", "currency", "invoices", "subtotal", "tax", "total", "equal"],
                  tot_rows)
    for r in rows:
        if r.problems:
            out += [f"**{r.label}: mismatch**", "", *[f"- {p}" for p in r.problems], ""]
    return out


def growth_report(rows: list[PricingRow]) -> list[str]:
    """How time and memory grow with the month: per usage row, for both tools."""
    if not rows:
        return []
    table = []
    for r in rows:
        inv, duck = r.invoicing.result or {}, r.duckdb.result or {}
        n = (inv.get("counts") or {}).get("rows_in") or 0
        if not n:
            continue
        table.append((
            r.label, f"{n:,}",
            f"{inv.get('seconds', 0.0) / n * 1e6:.3f}", f"{duck.get('seconds', 0.0) / n * 1e6:.3f}",
            f"{r.invoicing.max_rss / n:,.0f}", f"{r.duckdb.max_rss / n:,.0f}",
        ))
    return ["### How the cost grows with the month", "",
            "Work per usage row (µs) and peak RSS per usage row (bytes, the whole "
            "process's peak divided by the rows, so fixed costs weigh more on a small "
            "month).", "",
            *_table(["month", "usage rows", "invoicing µs/row", "DuckDB µs/row",
                     "invoicing peak RSS bytes/row", "DuckDB peak RSS bytes/row"], table)]


def object_storage_section(workdir: Path, repeat: int) -> dict[str, Any]:
    """The medium month from a moto S3 server on 127.0.0.1 against the same month from
    the local folder (`benchmarks.s3_bench`)."""
    from benchmarks.s3_bench import compare  # it imports this module

    folder = workdir / "object-storage"
    folder.mkdir(parents=True, exist_ok=True)
    print("object storage: the medium month from moto S3 and from the local folder",
          file=sys.stderr, flush=True)
    result = compare("medium", repeat, folder)
    print(f"  S3 {result['s3_rss_mib']:,} MiB, local {result['local_rss_mib']:,} MiB "
          f"({result['ratio']:.2f}×)", file=sys.stderr, flush=True)
    return result


def object_storage_report(result: dict[str, Any]) -> list[str]:
    return ["## Usage read from object storage", "",
            "The medium month computed (`benchmarks.measure pricing`) from a moto S3 server "
            "on 127.0.0.1 and from the local folder, each in its own child process; peak "
            f"RSS is the largest of {result.get('repeat', 1)} run(s) each.", "",
            *_table(["month", "usage rows", "usage files", "peak RSS local", "peak RSS S3",
                     "S3/local (target ≤ 1.2×)", "work local (s)", "work S3 (s)",
                     "totals equal"],
                    [(result["size"], f"{result['usage_rows']:,}", result["usage_files"],
                      f"{result['local_rss_mib']:,} MiB", f"{result['s3_rss_mib']:,} MiB",
                      f"{result['ratio']:.2f}×", _s(result["local_seconds"]),
                      _s(result["s3_seconds"]), "yes" if result["totals_equal"] else "**NO**")])]


def targets_report(rows: list[PricingRow], storage: dict[str, Any] | None) -> list[str]:
    """Issue 24's targets, each as measured in this run."""
    checks = []
    for r in rows:
        if r.label != "large":
            continue
        inv, duck = r.invoicing.result or {}, r.duckdb.result or {}
        if inv.get("seconds") and duck.get("seconds"):
            work = inv["seconds"] / duck["seconds"]
            checks.append(("large month: invoicing work ≤ 1.0× the equivalent DuckDB query",
                           f"{work:.2f}× ({_s(inv['seconds'])} s against "
                           f"{_s(duck['seconds'])} s)", work <= 1.0))
        if r.duckdb.max_rss:
            rss = r.invoicing.max_rss / r.duckdb.max_rss
            checks.append(("large month: peak RSS ≤ DuckDB's",
                           f"{rss:.2f}× ({_mib(r.invoicing.max_rss)} against "
                           f"{_mib(r.duckdb.max_rss)})", rss <= 1.0))
    if storage:
        checks.append(("medium month from S3: peak RSS ≤ 1.2× from local files",
                       f"{storage['ratio']:.2f}× ({storage['s3_rss_mib']:,} MiB against "
                       f"{storage['local_rss_mib']:,} MiB)", bool(storage["met"])))
    if not checks:
        return []
    return ["## Targets", "",
            *_table(["target", "this run", "met"],
                    [(what, got, "yes" if met else "**no**") for what, got, met in checks])]


def pdf_report(rows: list[dict[str, Any]], font: str) -> list[str]:
    cores = os.cpu_count() or 1
    out = ["## PDF rendering (one-page invoices)", "",
           "`InvoiceRenderer` kept alive per process (warm-up excluded, start-up shown apart); "
           f"all cores = a pool of {cores} workers, one renderer each. *Naive* = a fresh "
           "`weasyprint.HTML(string=html).write_pdf()` per invoice of a simple self-contained "
           "page with `font-family: \"Noto Sans CJK KR\", \"Noto Sans CJK SC\", sans-serif` "
           f"(fc-match: {font}). *Naive, project page* = the project's own HTML and "
           "`invoice.css` (re-parsed per invoice, `@font-face` removed, same system font "
           "stack) through a fresh `HTML(...).write_pdf()`. *mix* = en_US, ko_KR and zh_CN "
           "invoices in turn; every timed invoice has its own customer, address, app and peak "
           "figures. Issue 5's 8× target is read against the naive project page, which prints "
           "the same invoice (the simple page is a smaller document, shown for reference). "
           "Peak RSS of the largest process.",
           ""]
    table = []
    for r in rows:
        one, all_, naive, tpl = r["one"], r["all"], r["naive"], r["naive_tpl"]
        table.append((
            r["locale"], one["pages"],
            f"{one['per_second']:.2f}", f"{all_['per_second']:.2f}",
            f"{all_['per_second'] / one['per_second']:.2f}×",
            f"{naive['per_second']:.2f}", f"{tpl['per_second']:.2f}",
            f"{all_['per_second'] / naive['per_second']:.1f}×",
            f"{all_['per_second'] / tpl['per_second']:.1f}×",
            f"{one['mean_bytes'] / 1024:.0f} / {naive['mean_bytes'] / 1024:.0f} / "
            f"{tpl['mean_bytes'] / 1024:.0f}",
            f"{one['startup_seconds']:.2f} / {all_['startup_seconds']:.2f}",
            f"{_mib(one['max_rss'])} / {_mib(all_['max_rss'])} / {_mib(naive['max_rss'])}",
            f"{one['count']} / {all_['count']} / {naive['count']}",
        ))
    out += _table(["locale", "pages", "renderer 1 worker (inv/s)",
                   f"renderer {cores} workers (inv/s)", "speed-up", "naive (inv/s)",
                   "naive, project page (inv/s)", "all cores / naive simple page",
                   "all cores / naive project page (target ≥ 8×)",
                   "PDF KiB renderer / naive / naive page",
                   "start-up 1w / all (s)", "peak RSS 1w / all / naive",
                   "invoices timed 1w / all / naive"], table)
    return out


def cluster_section(workdir: Path, count: int, repeat: int) -> dict[str, Any]:
    run = run_child(["-m", "benchmarks.cluster_bench", "--count", str(count), "--workers",
                     "1,2", "--pool-workers", "2", "--repeat", str(repeat)], workdir)
    if not run.ok or run.result is None:
        raise SystemExit(f"cluster benchmark failed:\n{run.stderr}")
    for row in run.result["clusters"]:
        print(f"  cluster {row['workers']} worker(s) {row['per_second']:7.2f} invoices/s, "
              f"coordinator {row['coordinator_cpu_ms_per_invoice']:.2f} ms CPU/invoice",
              file=sys.stderr, flush=True)
    return run.result


def cluster_report(result: dict[str, Any]) -> list[str]:
    pool = result["pool"]
    by_workers = {row["workers"]: row for row in result["clusters"]}
    one, two = by_workers[1], by_workers[2]
    out = ["## Rendering on a Dask cluster (one-page invoices, en/ko/zh mix)", "",
           f"{result['count']} invoices per run, fastest of {result.get('repeat', 1)} "
           "interleaved rounds (all rates in the last column). Cluster = `dask scheduler` "
           "and N `dask worker --nthreads 1` processes on 127.0.0.1, each worker warmed "
           "up (one invoice per locale), documents sent through `invoicing.render.cluster` "
           "as `invoicing run --cluster` sends them; connecting and the worker check are "
           "shown apart. Local pool = 2 processes (`pdf_bench renderer --workers 2`). "
           "Coordinator CPU = CPU time of the process holding the Dask client, while "
           "rendering. Bytes moved = the pickled document out + the PDF back.", ""]
    def rounds(row: dict[str, Any]) -> str:
        return ", ".join(f"{r:.2f}" for r in row.get("all_per_second", [row["per_second"]]))

    local_ms = result.get("local", {}).get("cpu_ms_per_invoice", float("nan"))
    rows = [("local pool, 2 processes", f"{pool['per_second']:.2f}", "", "1.00×", "", "",
             f"{local_ms:.1f} (one warm renderer)", "", "", rounds(pool))]
    for row in (one, two):
        rows.append((
            f"cluster, {row['workers']} worker(s)", f"{row['per_second']:.2f}",
            f"{row['per_second'] / one['per_second']:.2f}×",
            f"{row['per_second'] / pool['per_second']:.2f}×",
            f"{row['coordinator_cpu_ms_per_invoice']:.2f}",
            f"{row['scheduler_cpu_ms_per_invoice']:.2f}",
            f"{row.get('worker_cpu_ms_per_invoice', float('nan')):.1f}",
            f"{(row['document_bytes_per_invoice'] + row['pdf_bytes_per_invoice']) / 1024:.1f}"
            f" ({row['document_bytes_per_invoice'] / 1024:.1f} out + "
            f"{row['pdf_bytes_per_invoice'] / 1024:.1f} back)",
            f"{row['connect_check_seconds']:.2f}", rounds(row),
        ))
    out += _table(["run", "invoices/s", "vs 1 worker (target 2 workers ≥ 1.8×)",
                   "vs local pool (target 2 workers ≥ 0.90×)",
                   "coordinator CPU ms/invoice (target ≤ 2)", "scheduler CPU ms/invoice",
                   "worker CPU ms/invoice",
                   "KiB moved per invoice", "connect + check (s)", "all rounds (inv/s)"],
                  rows)
    # A worker's rate on a core of its own: the CPU time of one warm local renderer (the
    # measured rates above also carry whatever else the machine is running).
    per_worker = 1000 / local_ms
    feeds = 1000 / max(two["coordinator_cpu_ms_per_invoice"], 1e-9) / per_worker
    out += [f"One coordinator core feeds about {feeds:,.0f} workers rendering "
            f"{per_worker:.1f} one-page invoices/s each (1000 / coordinator ms per invoice "
            "/ a worker's CPU-bound rate, 1000 / the local renderer's ms per invoice); "
            "multi-page invoices take proportionally longer per invoice, so it feeds "
            "proportionally more workers.", ""]
    return out


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sizes: " + ", ".join(f"{s.name} = {s.apps:,} apps / {s.customers:,} customers"
                                     for s in SIZES.values()),
    )
    parser.add_argument("--sizes", default=None,
                        help=f"comma-separated sizes (default {DEFAULT_SIZES}; tiny with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny month, few PDFs, naive baseline on 1 invoice")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF section")
    parser.add_argument("--no-pricing", action="store_true", help="skip the pricing section")
    parser.add_argument("--no-cluster", action="store_true",
                        help="skip the Dask cluster section")
    parser.add_argument("--no-s3", action="store_true",
                        help="skip the object storage section (medium month on moto S3)")
    parser.add_argument("--cluster-count", type=int, default=None,
                        help="invoices per cluster measurement (default 240; 12 with --quick)")
    parser.add_argument("--no-sample", action="store_true",
                        help="do not check sample_data/2026-10 against DuckDB")
    parser.add_argument("--repeat", type=int, default=None,
                        help="repeat each pricing measurement, keep the fastest "
                             "(default 3; 1 with --quick)")
    parser.add_argument("--pdf-count", type=int, default=None,
                        help="invoices per locale and worker (default 60; 4 with --quick)")
    parser.add_argument("--naive-count", type=int, default=None,
                        help="naive invoices per locale (default 6; 1 with --quick)")
    parser.add_argument("--seed", type=int, default=20261031)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to generate months (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated months")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Markdown report")
    args = parser.parse_args(argv)

    size_names = (args.sizes or ("tiny" if args.quick else DEFAULT_SIZES)).split(",")
    unknown = [s for s in size_names if s not in SIZES]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
    sizes = [SIZES[s] for s in size_names]
    pdf_count = args.pdf_count or (4 if args.quick else 60)
    repeat = args.repeat or (1 if args.quick else 3)
    naive_count = args.naive_count or (1 if args.quick else 6)

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="invoicing-bench-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    report = ["# Benchmark results", "", *environment(argv)]
    failed = False
    try:
        rows: list[PricingRow] = []
        storage = None
        if not args.no_pricing:
            rows = pricing_section(sizes, workdir, max(1, repeat), args.seed, args.keep,
                                   check_sample=not args.no_sample)
            failed = any(not r.equal for r in rows)
        if not args.no_s3:
            storage = object_storage_section(workdir, max(1, repeat))
            failed = failed or not storage["totals_equal"]
        report += targets_report(rows, storage)
        if rows:
            report += pricing_report(rows)
        if storage:
            report += object_storage_report(storage)
        if not args.no_pdf:
            pdf_rows, font = pdf_section(workdir, pdf_count, naive_count)
            report += pdf_report(pdf_rows, font)
        if not args.no_cluster:
            report += cluster_report(cluster_section(
                workdir, args.cluster_count or (12 if args.quick else 240), max(1, repeat)))
    finally:
        if own_workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.keep:
            print(f"generated months kept in {workdir}", file=sys.stderr)
    text = "\n".join(report).rstrip() + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"written to {args.output}", file=sys.stderr)
    if failed:
        print("FAILED: totals differ (see the report)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
