"""Peak RSS of one month read from object storage against the same month read from disk.

    python -m benchmarks.s3_bench                  # the medium month (3.1M usage rows)
    python -m benchmarks.s3_bench --size small --repeat 2

A synthetic month (`benchmarks.synth`) is generated in a temporary folder and uploaded to
a moto S3 server started on 127.0.0.1 (its own process, so its memory is not counted).
Then, each in its own child process (`benchmarks.measure pricing`: load, validate,
pricing, entitlements, assemble, the two Parquet outputs written locally), the month is
computed from the local folder and from ``s3://…``; the totals must be equal. The
target (issue #24): peak RSS from S3 at most 1.2× peak RSS from the local folder.
Prints one JSON object; exit status 1 if the totals differ or a child failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import MONTH, SIZES, ChildRun, run_child

BUCKET = "bench"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1"}
TARGET = 1.2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_moto(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto_server did not start")


def upload(month_dir: Path, endpoint: str) -> str:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEYS["AWS_ACCESS_KEY_ID"],
                           secret=KEYS["AWS_SECRET_ACCESS_KEY"], skip_instance_cache=True)
    fs.mkdir(BUCKET)
    fs.put(str(month_dir), f"{BUCKET}/in", recursive=True)
    return f"s3://{BUCKET}/in"


def measure(input_dir: str, workdir: Path, env: dict[str, str] | None = None) -> ChildRun:
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return run_child(["-m", "benchmarks.measure", "pricing", "--input", input_dir,
                          "--month", MONTH], workdir)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def compare(size: str, repeat: int, workdir: Path, month_dir: Path | None = None
            ) -> dict[str, Any]:
    spec = SIZES[size]
    if month_dir is None:
        month_dir = workdir / "month"
        gen = run_child(["-m", "benchmarks.synth", "--out", str(month_dir), "--apps",
                         str(spec.apps), "--customers", str(spec.customers), "--month", MONTH],
                        workdir, json_out=False)
        if not gen.ok:
            raise RuntimeError(f"synth failed: {gen.stderr}")
        generated = gen.result or {}
    else:
        generated = {"usage_files": len(list((month_dir / "usage").rglob("*.parquet")))}
    server, endpoint = start_moto(workdir)
    try:
        url = upload(month_dir, endpoint)
        env = {**KEYS, "AWS_ENDPOINT_URL": endpoint}
        local = [measure(str(month_dir), workdir) for _ in range(repeat)]
        remote = [measure(url, workdir, env) for _ in range(repeat)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    failed = [r for r in (*local, *remote) if not r.ok]
    if failed:
        raise RuntimeError(f"a measurement failed: {failed[0].stderr}")
    equal = all(r.result == local[0].result or (
        r.result is not None and local[0].result is not None
        and r.result["totals"] == local[0].result["totals"]) for r in remote)
    local_rss = max(r.max_rss for r in local)
    remote_rss = max(r.max_rss for r in remote)
    mib = 1 << 20
    return {
        "size": size,
        "repeat": repeat,
        "usage_rows": (local[0].result or {}).get("counts", {}).get("rows_in"),
        "usage_files": generated.get("usage_files"),
        "local_rss_mib": round(local_rss / mib),
        "s3_rss_mib": round(remote_rss / mib),
        "ratio": round(remote_rss / local_rss, 3),
        "target": TARGET,
        "met": remote_rss <= TARGET * local_rss,
        "local_seconds": round(min(r.result["seconds"] for r in local if r.result), 2),
        "s3_seconds": round(min(r.result["seconds"] for r in remote if r.result), 2),
        "totals_equal": equal,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium", choices=tuple(SIZES))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--month-dir", type=Path, default=None,
                        help="a month already generated (benchmarks.synth) instead of --size")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="invoicing-bench-s3-"))
    try:
        report = compare(args.size, args.repeat, workdir, args.month_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0 if report["totals_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
