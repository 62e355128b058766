"""What a rerun renders after the batch process is killed at about 60% of rendering.

    python -m benchmarks.resume_bench --at 0.6 --json OUT

The sample month (`sample_data/2026-10`, 15 invoices) is run with ``--out`` on object
storage (a ``moto_server`` process on 127.0.0.1) and ``--workers 1``; the batch process
is SIGKILLed as soon as 60% of the invoices' PDFs are in the month's scope. The rerun's
summary says how many it reused and rendered; its published objects are compared byte
for byte with a local run of the same month.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.funnel_bench import AWS, _free_port

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "2026-10"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=float, default=0.6, help="share of PDFs staged at the kill")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    bin_dir = Path(sys.executable).parent
    endpoint = f"http://127.0.0.1:{_free_port()}"
    moto = subprocess.Popen([str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p",
                             endpoint.rsplit(":", 1)[1]], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    env = {**os.environ, **AWS, "AWS_ENDPOINT_URL": endpoint}
    os.environ.update(env)
    try:
        import s3fs

        time.sleep(2)
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="testing", secret="testing",
                               skip_instance_cache=True, use_listings_cache=False)
        fs.mkdir("resume")
        run = [str(bin_dir / "invoicing"), "run", "--month", "2026-10", "--input",
               str(SAMPLE), "--out", "s3://resume/out", "--workers", "1"]
        total = 15
        proc = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        staged = 0
        while proc.poll() is None:
            found = fs.find("resume/out/2026-10/objects") if fs.exists("resume/out") else []
            staged = len([k for k in found if k.endswith(".pdf")])
            if staged >= args.at * total:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait()
        at_kill = len([k for k in fs.find("resume/out/2026-10/objects") if k.endswith(".pdf")])
        rerun = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
        found = re.search(r"reused from an earlier unfinished run: (\d+) \(rendered: (\d+)\)",
                          rerun.stdout)
        reused, rendered = (int(found.group(1)), int(found.group(2))) if found else (0, total)
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([*run[:6], "--out", folder, "--workers", "1"], check=True,
                           capture_output=True)
            local = {p.relative_to(Path(folder) / "2026-10").as_posix():
                     hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in (Path(folder) / "2026-10").rglob("*") if p.is_file()}
        manifest = fs.cat_file("resume/out/2026-10/manifest.json")
        from invoicing.storage import content_key

        scope = f"resume/out/2026-10/objects/{content_key(json.loads(manifest))}"
        stored = {name: hashlib.sha256(fs.cat_file(f"{scope}/{name}")).hexdigest()
                  for name in json.loads(manifest)["outputs"] if name != "manifest.json"}
        stored["manifest.json"] = hashlib.sha256(manifest).hexdigest()
        result = {"invoices": total, "killed_at_staged": at_kill, "reused": reused,
                  "rendered_by_rerun": rendered, "rendered_share": rendered / total,
                  "byte_identical_to_local_run": stored == local}
    finally:
        moto.kill()
        moto.wait()
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
