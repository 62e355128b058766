"""Benchmarks of the billing batch: a synthetic month generator, a DuckDB baseline that
computes the same charges, and a runner (``python -m benchmarks.run``, ``make bench``)
that times the pricing path and PDF rendering and writes ``benchmarks/results/latest.md``.
"""
