"""Stage 7, publish: atomic staging and commit, the manifest, the month lock, and the
record of what was issued."""
