"""CPU instructions per rendered invoice, counted by Valgrind: a noise-free render profile.

    python -m benchmarks.render_instructions            # mix of en_US, ko_KR, zh_CN
    python -m benchmarks.render_instructions --locale ko_KR --count 6
    python -m benchmarks.render_instructions --stock fonts   # without one render change

Wall-clock rates on a shared VM move by 10-50% between runs, which hides the effect of
a 2% change. Instructions executed do not move: this counts them, under Callgrind, for
`InvoiceRenderer.render_pdf` of the benchmark's one-page invoices (the same documents
as ``pdf_bench``), after two warm-up invoices per locale (`--warm-up`): the renderer
prepares a font face for subsetting at its second use, a one-off cost per process that a
batch of hundreds of invoices per worker does not see per invoice. Interpreter start-up and
imports are not counted: a tiny C helper switches Callgrind's instrumentation on and off
around the timed loop (Callgrind client requests, called through ctypes).

Needs ``valgrind`` (with its headers) and a C compiler; ``scripts/install-system-deps.sh
valgrind`` installs the first on Debian. Runs ~30 s for 6 invoices.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: What ``--stock`` may leave out: the `render_engine` changes, and the renderer's
#: once-only stream compression (without it the PDF bytes differ: pydyf deflates at level 9).
STOCK_CHOICES = ("fonts", "computed_values", "page", "streams")

HELPER_C = """
#include <valgrind/callgrind.h>
void count_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void count_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS; }
"""


def _child(helper: Path, locale: str, count: int, warm_up: int, stock: list[str]) -> None:
    """Inside Valgrind: warm up, then render `count` invoices between the two requests."""
    from benchmarks.pdf_bench import documents, warm_up_documents
    from invoicing.render import engine as render_engine
    from invoicing.render import pdf as render
    from invoicing.render.pdf import InvoiceRenderer

    counter = ctypes.CDLL(str(helper))
    render_engine.install(without=[name for name in stock if name != "streams"])
    if "streams" in stock:  # pydyf's own compression: level 9, twice per stream
        render.compress_streams_once = lambda document, pdf: None
    renderer = InvoiceRenderer()
    for _ in range(warm_up):
        for doc in warm_up_documents(locale):
            renderer.render_pdf(doc)
    docs = documents(locale, count)
    counter.count_start()
    for doc in docs:
        renderer.render_pdf(doc)
    counter.count_stop()


def count(locale: str, count: int, warm_up: int = 2, stock: tuple[str, ...] = ()) -> float:
    """Millions of instructions per invoice."""
    for tool in ("valgrind", "cc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"render_instructions: `{tool}` not found "
                             "(scripts/install-system-deps.sh valgrind gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        source, helper = Path(tmp, "count.c"), Path(tmp, "libcount.so")
        source.write_text(HELPER_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(helper), str(source)],
                       check=True)
        out = Path(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}.%p", sys.executable, "-m",
             "benchmarks.render_instructions", "--child", str(helper),
             "--locale", locale, "--count", str(count), "--warm-up", str(warm_up),
             *(f"--stock={name}" for name in stock)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        total = 0
        for dump in Path(tmp).glob("callgrind.out.*"):
            for line in dump.read_text(errors="replace").splitlines():
                if match := re.match(r"^totals: (\d+)", line):
                    total += int(match.group(1))
                    break
    return total / count / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locale", default="mix", choices=("en_US", "ko_KR", "zh_CN", "mix"))
    parser.add_argument("--count", type=int, default=6, help="invoices counted")
    parser.add_argument("--warm-up", type=int, default=2,
                        help="rounds of one invoice per locale rendered before counting")
    parser.add_argument("--stock", action="append", default=[], choices=STOCK_CHOICES,
                        help="leave one render change out (repeatable): a render_engine "
                        "change, or `streams` (pydyf's own stream compression)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.locale, args.count, args.warm_up, args.stock)
        return 0
    millions = count(args.locale, args.count, args.warm_up, tuple(args.stock))
    left_out = f", without {'+'.join(args.stock)}" if args.stock else ""
    print(f"{millions:.1f} M instructions per invoice "
          f"({args.locale}, {args.count} invoices, {args.warm_up} warm-up rounds{left_out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
