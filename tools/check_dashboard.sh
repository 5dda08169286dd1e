#!/usr/bin/env bash
# Open the documentation site's performance history in headless Chromium,
# served on 127.0.0.1 with no other network, and fail unless every graph
# rendered and shows every commit its machine recorded (at least
# MIN_COMMITS on the machine with the longest history).
#
#   bash tools/check_dashboard.sh SITE_DIR [SCREENSHOT.png] [MIN_COMMITS]
#
# SITE_DIR is a built docs site (its performance/ folder comes from
# benchmarks/dashboard.py).  Installs Debian's chromium if it is missing.
set -euo pipefail
site="$(realpath "$1")"
shot="${2:-}"
min_commits="${3:-5}"
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$site" "$port" \
    >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" \
        2>/dev/null && break
    sleep 0.1
done
url="http://127.0.0.1:$port/performance/index.html"
browse() {
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --virtual-time-budget=30000 "$@" 2>/dev/null
}
dom="$(mktemp)"
browse --dump-dom "$url" > "$dom"
if [ -n "$shot" ]; then
    browse --window-size=1280,2000 --screenshot="$(realpath -m "$shot")" "$url" >/dev/null
    echo "screenshot: $shot"
fi
python3 - "$dom" "$min_commits" <<'PY'
import re, sys
page = open(sys.argv[1]).read()
min_commits = int(sys.argv[2])
body = re.search(r'<body[^>]*data-graphs="(\d+)"[^>]*data-drawn="(\d+)"', page)
if not body:
    sys.exit("check_dashboard: the page did not load (no <body data-graphs>)")
want, drawn = map(int, body.groups())
graphs = re.findall(r'<div class="graph[^"]*" id="(g\d+)" data-benchmark="([^"]*)" '
                    r'data-commits="(\d+)" data-machine-commits="(\d+)"', page)
svgs = len(re.findall(r'<svg class="main-svg"', page))
remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(?:https?:)?//', page)
print(f"check_dashboard: {drawn} of {want} graphs drawn, {svgs} plot "
      f"surfaces, commits per graph {min((int(c) for _, _, c, _ in graphs), default=0)}"
      f"-{max((int(c) for _, _, c, _ in graphs), default=0)}")
problems = []
if want == 0:
    problems.append("no graphs (benchmarks/results holds no results?)")
if drawn != want or len(graphs) != want:
    problems.append(f"{want - drawn} graphs did not render")
if svgs < want:
    problems.append(f"only {svgs} plot surfaces for {want} graphs")
# A graph shows every commit its machine recorded, up to MIN_COMMITS (a
# machine recorded recently has fewer); the longest history has MIN_COMMITS.
few = [name for _, name, c, m in graphs if int(c) < min(min_commits, int(m))]
if few:
    problems.append(f"{len(few)} graphs with fewer commits than their machine "
                    f"recorded (up to {min_commits}), e.g. {few[0]}")
if graphs and max(int(m) for *_, m in graphs) < min_commits:
    problems.append(f"no machine with {min_commits} recorded commits")
if remote:
    problems.append(f"remote resources: {remote[:3]}")
if problems:
    sys.exit("check_dashboard: " + "; ".join(problems))
PY
