"""PDF rendering throughput of one-page invoices, one measurement per process.

    python -m benchmarks.pdf_bench renderer --locale ko_KR --workers 1 --count 20 --json OUT
    python -m benchmarks.pdf_bench renderer --locale ko_KR --workers 0 --count 40 --json OUT
    python -m benchmarks.pdf_bench naive    --locale ko_KR --count 2 --json OUT
    python -m benchmarks.pdf_bench naive-template --locale ko_KR --count 2 --json OUT
    python -m benchmarks.pdf_bench renderer --locale mix --workers 0 --count 60 --json OUT

``renderer`` uses `invoicing.render.pdf.InvoiceRenderer` the way the batch does: one renderer
per process kept alive across documents. ``--workers 1`` renders in this process;
``--workers N`` (``0`` = all cores) uses a process pool whose workers each build one
renderer, render one warm-up invoice and then take documents from the pool. Start-up
(renderer construction, warm-up) is reported apart from the timed documents.

``naive`` is what a first implementation would do: per invoice, a fresh
``weasyprint.HTML(string=html).write_pdf()`` of a self-contained page that uses the
system fonts (``"Noto Sans CJK KR", "Noto Sans CJK SC", sans-serif``), with nothing
reused between invoices. ``naive-template`` prints the project's own page the same naive
way: per invoice the template's HTML (`InvoiceRenderer.render_html`, not timed) goes to a
fresh ``HTML(...).write_pdf()`` with ``invoice.css`` parsed again, its ``@font-face`` rules
removed and every font replaced by the same system Noto CJK stack. That isolates what
keeping one renderer (parsed CSS, font configuration, bundled fonts) alive buys.

Documents come from ``tests/documents_factory.make_document`` (one app, so one page);
when that module is not importable a document with the same kind of lines is built here.
``--locale mix`` interleaves en_US, ko_KR and zh_CN invoices (en, ko, zh, en, ...), the
way a month's batch mixes them; every mode accepts it, and the renderer warms up one
invoice of each locale first.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import multiprocessing as mp
import os
import re
import resource
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from invoicing.core.documents import AppSection, InvoiceDocument, Line, Party

LOCALES: tuple[str, ...] = ("en_US", "ko_KR", "zh_CN")
MIX = "mix"
CURRENCY = {"en_US": "USD", "ko_KR": "KRW", "zh_CN": "CNY"}
NAIVE_FONTS = '"Noto Sans CJK KR", "Noto Sans CJK SC", sans-serif'


# --- documents ----------------------------------------------------------------------------


def one_page_document(locale: str) -> InvoiceDocument:
    """A consistent one-page invoice (one app, five lines) in `locale`."""
    currency = CURRENCY[locale]
    try:
        from tests.documents_factory import make_app, make_document
    except ImportError:
        return _fallback_document(locale, currency)
    app = make_app(1400000001, "Main chat", currency=currency)
    return make_document(locale, apps=(app,), currency=currency)


def _fallback_document(locale: str, currency: str) -> InvoiceDocument:
    digits = 0 if currency == "KRW" else 2
    unit = Decimal(1).scaleb(-digits)
    fee = {"USD": Decimal("399.00"), "KRW": Decimal("549000"), "CNY": Decimal("999.00")}[currency]
    block = {"USD": Decimal("149.99"), "KRW": Decimal("206000"),
             "CNY": Decimal("1000.00")}[currency]
    lines = (
        Line("plan_fee", "Pro plan, in force on 2026-10-01", Decimal(1), fee, fee, plan="pro"),
        Line("dau_overage", "DAU overage", Decimal(2), block, (block * 2).quantize(unit),
             plan="pro", peak_value=23456, peak_date=date(2026, 10, 14), free_quota=10000,
             block=10000, excess=13456),
        Line("group_overage", "Group overage", Decimal(1), block, block, plan="pro",
             peak_value=100001, peak_date=date(2026, 10, 30), free_quota=100000,
             block=100000, excess=1),
        Line("group_member_limit", "group_member_limit 3000", Decimal(1), fee / 8,
             (fee / 8).quantize(unit), plan="pro", tier="3000", active_days=12,
             first_active=date(2026, 10, 5), last_active=date(2026, 10, 16)),
        Line("av_call", "av_call, free trial", Decimal(0), fee / 7, Decimal(0).quantize(unit),
             plan="pro", tier="on", active_days=31, first_active=date(2026, 10, 1),
             last_active=date(2026, 10, 31), trial_end=date(2026, 11, 29)),
    )
    subtotal = sum((ln.amount for ln in lines), Decimal(0))
    country = {"USD": "US", "KRW": "KR", "CNY": "CN"}[currency]
    rate = Decimal("0.10") if country == "KR" else Decimal(0)
    tax = (subtotal * rate).quantize(unit)
    return InvoiceDocument(
        invoice_number="IM-202610-000001",
        customer=Party("C-0001", {"en_US": "Acme Chat Inc.", "ko_KR": "주식회사 한빛메신저",
                                  "zh_CN": "上海星云通讯有限公司"}[locale],
                       "ap@acme.example", "1 Main Street\nCity", country, None),
        locale=locale, currency=currency, issue_date=date(2026, 11, 1),
        due_date=date(2026, 11, 3), period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        apps=(AppSection(1400000001, "Main chat", lines, subtotal),),
        subtotal=subtotal, tax_rate=rate, tax=tax, total=subtotal + tax,
        pricebook_version=f"{currency}@2026-01-01", pricebook_effective_from=date(2026, 1, 1),
        run_id="202610-000000000000", inputs_digest="0" * 64, software_version="bench",
        seller=("Nimbus IM Cloud Ltd.", "1 Harbour Road", "Singapore 018989"),
    )


#: Word pools for per-invoice customer and app names: a month's invoices differ in their
#: names, addresses and figures, so every timed invoice does too (a cache keyed on
#: content cannot look better here than on a real batch).
_NAME_WORDS = {
    "en_US": (("Acme", "Blue Harbor", "Northwind", "Pixel Forge", "Quartz", "Redwood",
               "Summit", "Tidal", "Vantage", "Willow", "Zephyr", "Lumen"),
              ("Chat", "Messaging", "Social", "Games", "Labs", "Networks", "Media"),
              ("Inc.", "LLC", "Ltd.", "GmbH", "Pty Ltd", "S.A.")),
    "ko_KR": (("한빛", "새롬", "푸른", "하늘", "다온", "누리", "미래", "별빛", "바다", "이음",
               "온새", "가람"),
              ("메신저", "소프트", "테크", "네트웍스", "커뮤니케이션", "랩스", "게임즈"),
              ("주식회사", "(주)", "유한회사")),
    "zh_CN": (("星云", "云帆", "华信", "腾达", "智联", "远景", "天启", "新航", "博雅", "鼎盛",
               "瑞丰", "恒通"),
              ("通讯", "网络", "科技", "信息技术", "软件", "互动娱乐", "数据"),
              ("北京", "上海", "深圳", "杭州", "广州", "成都", "南京")),
}
_STREETS = {
    "en_US": ("Market Street", "Harbor Avenue", "Elm Road", "Main Street", "Pine Lane"),
    "ko_KR": ("서울특별시 강남구 테헤란로", "부산광역시 해운대구 센텀중앙로",
              "경기도 성남시 분당구 판교역로", "대전광역시 유성구 대학로"),
    "zh_CN": ("浦东新区世纪大道", "南山区科技园路", "西湖区文三路", "天河区珠江新城花城大道"),
}


def _varied(doc: InvoiceDocument, i: int) -> InvoiceDocument:
    """Invoice `i` of a batch: its own number, customer, address, app and peak figures."""
    first, middle, last = _NAME_WORDS[doc.locale]
    a, b, c = first[i % len(first)], middle[(i // 3) % len(middle)], last[(i // 7) % len(last)]
    street = _STREETS[doc.locale][i % len(_STREETS[doc.locale])]
    number = 10 + (i * 37) % 890
    name, address = {
        "en_US": (f"{a} {b} {c}", f"{number} {street}\nSuite {i % 40 + 1}\nSpringfield"),
        "ko_KR": (f"{c} {a}{b}", f"{street} {number}\n{a}빌딩 {i % 20 + 1}층"),
        "zh_CN": (f"{c}{a}{b}有限公司", f"{c}市{street}{number}号\n{a}大厦{i % 30 + 1}楼"),
    }[doc.locale]
    customer = replace(doc.customer, customer_id=f"C-{100000 + i}", name=name, address=address,
                       email=f"billing{i}@customer{i % 97}.example")
    apps = []
    for app in doc.apps:
        lines = []
        for line in app.lines:
            if (line.peak_value is not None and line.free_quota is not None
                    and line.peak_date is not None):
                # Same number of blocks (same amounts), another peak on another day.
                size = line.block or 1
                blocks = -(-(line.peak_value - line.free_quota) // size)
                peak = line.free_quota + (blocks - 1) * size + 1 + (i * 7919) % size
                line = replace(line, peak_value=peak, excess=peak - line.free_quota,
                               peak_date=line.peak_date.replace(day=1 + (i * 11) % 31))
            lines.append(line)
        apps.append(replace(app, sdk_app_id=1400000000 + i, app_name=f"{b} app {i % 9 + 1}",
                            lines=tuple(lines)))
    return replace(doc, invoice_number=f"IM-202610-{i + 1:06d}", customer=customer,
                   apps=tuple(apps))


def documents(locale: str, count: int) -> list[InvoiceDocument]:
    """`count` distinct one-page invoices (see `_varied`).

    ``locale="mix"``: the three locales in turn (en_US, ko_KR, zh_CN, en_US, ...).
    """
    locales = LOCALES if locale == MIX else (locale,)
    docs = {loc: one_page_document(loc) for loc in locales}
    return [_varied(docs[locales[i % len(locales)]], i) for i in range(count)]


def warm_up_documents(locale: str) -> list[InvoiceDocument]:
    """One invoice per locale in the run, numbered apart from the timed ones."""
    warm = len(LOCALES) if locale == MIX else 1
    return [replace(doc, invoice_number=f"IM-202610-{999999 - i:06d}")
            for i, doc in enumerate(documents(locale, warm))]


def pdf_pages(pdf: bytes) -> int | None:
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    return len(PdfReader(io.BytesIO(pdf)).pages)


# --- the project's renderer ---------------------------------------------------------------

_renderer: Any = None


def _init_worker(barrier: Barrier, warm_up: list[InvoiceDocument]) -> None:
    """Pool initializer: one renderer per worker, warmed up, then wait for the others."""
    global _renderer
    from invoicing.render.pdf import InvoiceRenderer

    _renderer = InvoiceRenderer()
    for doc in warm_up:
        _renderer.render_pdf(doc)
    barrier.wait()


def _render(doc: InvoiceDocument) -> int:
    return len(_renderer.render_pdf(doc))


def _render_bytes(doc: InvoiceDocument) -> bytes:
    pdf: bytes = _renderer.render_pdf(doc)
    return pdf


def _ping(_: int) -> int:
    return os.getpid()


def bench_renderer(locale: str, count: int, workers: int) -> dict[str, Any]:
    docs = documents(locale, count)
    warm = warm_up_documents(locale)
    began = time.perf_counter()
    if workers == 1:
        from invoicing.render.pdf import InvoiceRenderer

        renderer = InvoiceRenderer()
        first = b""
        for doc in warm:  # every locale of the run, not only the first
            pdf = renderer.render_pdf(doc)
            first = first or pdf
        ready = time.perf_counter()
        sizes = [len(renderer.render_pdf(doc)) for doc in docs]
        done = time.perf_counter()
    else:
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(workers)
        with ctx.Pool(workers, initializer=_init_worker, initargs=(barrier, warm)) as pool:
            # Every initializer has passed the barrier once any task has run.
            pool.map(_ping, range(workers))
            ready = time.perf_counter()
            sizes = pool.map(_render, docs, chunksize=1)
            done = time.perf_counter()
            first = pool.apply(_render_bytes, (warm[0],))
    seconds = done - ready
    return {
        "mode": "renderer", "locale": locale, "workers": workers, "count": count,
        "startup_seconds": ready - began, "seconds": seconds,
        "per_second": count / seconds, "pages": pdf_pages(first),
        "mean_bytes": sum(sizes) // len(sizes),
    }


# --- the naive baseline -------------------------------------------------------------------

_NAIVE_LABELS = {
    "en_US": ("Invoice", "Bill to", "Item", "Qty", "Unit price", "Amount", "Subtotal", "Tax",
              "Total"),
    "ko_KR": ("청구서", "청구 대상", "항목", "수량", "단가", "금액", "소계", "부가세", "합계"),
    "zh_CN": ("发票", "客户", "项目", "数量", "单价", "金额", "小计", "税额", "合计"),
}


def naive_html(doc: InvoiceDocument) -> str:
    """A self-contained invoice page in system fonts (nothing shared between invoices)."""
    title, bill_to, item, qty, unit, amount, subtotal, tax, total = _NAIVE_LABELS[doc.locale]
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(app.app_name)}: {e(line.description)}</td><td>{line.quantity}</td>"
        f"<td>{line.unit_price} {doc.currency}</td><td>{line.amount} {doc.currency}</td></tr>"
        for app in doc.apps for line in app.lines
    )
    address = "<br>".join(e(part) for part in doc.customer.address.splitlines())
    return f"""<!doctype html>
<html lang="{doc.locale.replace('_', '-')}"><head><meta charset="utf-8">
<style>
  @page {{ size: A4; margin: 18mm; }}
  body {{ font-family: {NAIVE_FONTS}; font-size: 10pt; }}
  table {{ width: 100%; border-collapse: collapse; }}
  td, th {{ border-bottom: 1px solid #ccc; padding: 4px; text-align: left; }}
  .totals td {{ font-weight: bold; }}
</style></head><body>
<h1>{title} {e(doc.invoice_number)}</h1>
<p>{e(" / ".join(doc.seller))}</p>
<h2>{bill_to}</h2>
<p>{e(doc.customer.name)}<br>{address}<br>{e(doc.customer.email)}</p>
<p>{doc.period_start} – {doc.period_end} · {doc.issue_date} · {doc.due_date}</p>
<table><tr><th>{item}</th><th>{qty}</th><th>{unit}</th><th>{amount}</th></tr>{rows}
<tr class="totals"><td colspan="3">{subtotal}</td><td>{doc.subtotal} {doc.currency}</td></tr>
<tr class="totals"><td colspan="3">{tax}</td><td>{doc.tax} {doc.currency}</td></tr>
<tr class="totals"><td colspan="3">{total}</td><td>{doc.total} {doc.currency}</td></tr>
</table></body></html>
"""


def bench_naive(locale: str, count: int) -> dict[str, Any]:
    began = time.perf_counter()
    import weasyprint

    ready = time.perf_counter()
    docs = documents(locale, count)
    per_doc = []
    first = b""
    for doc in docs:
        start = time.perf_counter()
        pdf = weasyprint.HTML(string=naive_html(doc)).write_pdf()
        per_doc.append(time.perf_counter() - start)
        first = first or pdf
    seconds = sum(per_doc)
    return {
        "mode": "naive", "locale": locale, "workers": 1, "count": count,
        "startup_seconds": ready - began, "seconds": seconds, "per_second": count / seconds,
        "per_doc_seconds": per_doc, "pages": pdf_pages(first), "mean_bytes": len(first),
    }


def bench_naive_template(locale: str, count: int) -> dict[str, Any]:
    began = time.perf_counter()
    import weasyprint

    from invoicing.render import engine as render_engine
    from invoicing.render.pdf import STYLESHEET_NAME, InvoiceRenderer

    renderer = InvoiceRenderer()  # only for the template's HTML, which is not timed
    render_engine.uninstall()  # the naive baseline runs on stock WeasyPrint
    css_text = re.sub(r"@font-face\s*\{[^}]*\}", "",
                      (renderer.templates_dir / STYLESHEET_NAME).read_text(encoding="utf-8"))
    css_text += f"\n* {{ font-family: {NAIVE_FONTS} !important; }}\n"
    ready = time.perf_counter()
    per_doc = []
    first = b""
    for doc in documents(locale, count):
        page = renderer.render_html(doc)
        start = time.perf_counter()
        pdf = weasyprint.HTML(string=page, base_url=renderer.base_url).write_pdf(
            stylesheets=[weasyprint.CSS(string=css_text)])
        per_doc.append(time.perf_counter() - start)
        first = first or pdf
    seconds = sum(per_doc)
    return {
        "mode": "naive-template", "locale": locale, "workers": 1, "count": count,
        "startup_seconds": ready - began, "seconds": seconds, "per_second": count / seconds,
        "per_doc_seconds": per_doc, "pages": pdf_pages(first), "mean_bytes": len(first),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure PDF rendering throughput.")
    parser.add_argument("mode", choices=("renderer", "naive", "naive-template"))
    parser.add_argument("--locale", choices=(*LOCALES, MIX), required=True,
                        help=f"{MIX}: en_US, ko_KR and zh_CN invoices in turn")
    parser.add_argument("--count", type=int, required=True, help="invoices to time")
    parser.add_argument("--workers", type=int, default=1, help="0 = all cores (renderer only)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.mode == "naive":
        result = bench_naive(args.locale, args.count)
    elif args.mode == "naive-template":
        result = bench_naive_template(args.locale, args.count)
    else:
        result = bench_renderer(args.locale, args.count, args.workers or os.cpu_count() or 1)
    result["max_rss_bytes"] = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    ) * 1024
    args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
