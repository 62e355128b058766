"""Stage 5, assemble: totals, tax and invoice numbers (R7, R10), then the typed
documents the renderer prints."""
