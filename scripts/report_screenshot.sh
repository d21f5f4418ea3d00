#!/usr/bin/env bash
# Screenshot of Snakemake's HTML report with headless Chromium (Debian: apt-get install chromium),
# opened at a category's result (an image or an HTML page) as a person would click it:
#   bash scripts/report_screenshot.sh results-demo/report.html docs/report-screenshot.png "2. Training" training_curves.png
# The report is a React page; a copy of it gets one extra script that, once loaded, opens the
# category and shows the result whose path ends in the given name (the same calls as the clicks).
set -euo pipefail
report=$1 out=$2 category=${3:-"2. Training"} result=${4:-training_curves.png}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$report" "$work/report.html" "$category" "$result" <<'PY'
import json, sys
src, dst, category, result = sys.argv[1:]
html = open(src, encoding="utf-8").read()
opener = f"""<script>window.addEventListener("load", () => setTimeout(() => {{
  const path = Object.keys(results).find(k => k.endsWith({json.dumps("/" + result)}));
  if (!path) {{ document.title = "NOT FOUND"; return; }}
  app.showCategory({json.dumps(category)});
  const content = path.endsWith(".html") ? "html" : "img";
  setTimeout(() => app.setView({{content: content, contentPath: results[path].data_uri, resultPath: path}}), 500);
}}, 500));</script>"""
head, sep, tail = html.rpartition("</body>")
assert sep, "no </body> in the report"
open(dst, "w", encoding="utf-8").write(head + opener + sep + tail)
PY
mkdir -p "$(dirname "$out")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$work/profile" --hide-scrollbars \
  --virtual-time-budget=10000 --window-size=1400,1000 --screenshot="$(realpath -m "$out")" "file://$work/report.html"
echo "screenshot: $out"
