"""Stage 6, render: Jinja2 + WeasyPrint PDFs, Babel formatting and catalogues, the
embedded line items and e-invoice XML, on local processes or a Dask cluster."""
