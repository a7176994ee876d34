#!/usr/bin/env bash
# Render the HTML report as a person sees it: headless Chromium (Debian's `chromium`) to a PNG.
#   scripts/render_report_png.sh [OUT.png] [commcare report args…]
# Uses COMMCARE_DB as usual (e.g. the demo database).
set -euo pipefail
out="${1:-report.png}"; shift || true
html="$(mktemp --suffix=.html)"
commcare report today --format html --output "$html" --force "$@" || [ $? -eq 1 ]
profile="$(mktemp -d)"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1000,1500 --screenshot="$out" "file://$html" 2>/dev/null
rm -rf "$profile" "$html"
echo "$out"
