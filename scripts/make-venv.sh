#!/usr/bin/env bash
# Create the project's virtualenv with a Python that is new enough.
# On Debian, `python3 -m venv` needs the python3.X-venv package (ensurepip is split out of
# the standard library there): when the first attempt fails, that package is installed
# and the virtualenv made again.
set -euo pipefail
python=${1:?usage: make-venv.sh PYTHON VENV}
venv=${2:?usage: make-venv.sh PYTHON VENV}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: '$python' not found. invoicing needs Python 3.11 or newer" \
       "(Debian: apt-get install python3; or run make with PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $("$python" -V 2>&1) is too old: invoicing needs Python 3.11 or newer" \
       "(run make with PYTHON=/path/to/python3.11 or newer)" >&2
  exit 1
fi
# venv's error output goes to a temporary file, removed however this script ends.
err=$(mktemp "${TMPDIR:-/tmp}/invoicing-venv.XXXXXX")
trap 'rm -f "$err"' EXIT
if ! "$python" -m venv --clear "$venv" 2>"$err"; then
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "'$python -m venv' failed ($(tail -n 1 "$err")); installing python${version}-venv"
  "$(dirname "$0")/install-system-deps.sh" "python${version}-venv"
  "$python" -m venv --clear "$venv"
fi
