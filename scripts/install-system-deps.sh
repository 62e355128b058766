#!/usr/bin/env bash
# Install the Debian packages the project needs, if any is missing.
# WeasyPrint needs Pango (and HarfBuzz's subsetter, which makes font subsetting fast);
# poppler-utils gives pdftoppm/pdftotext for looking at rendered invoices.
# The fonts the PDFs embed are not system packages: they ship in templates/fonts/.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
