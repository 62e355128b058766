"""Shared records at the bottom of the pipeline: money, errors, the billed month, the
product catalogue and the typed documents. Imports nothing else of invoicing."""
