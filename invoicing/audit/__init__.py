"""After publishing: diff and reissue (reprocessing), verify, and the reports printed
for finance and auditors."""
