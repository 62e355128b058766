"""Stage 1, load: find and read the input files and the price book, check their structure."""
