#!/usr/bin/env bash
# Record asv results of the last N commits of main on the reference machine
# into benchmarks/results/ (kept in git: the performance history the docs
# draw), then draw the dashboard into benchmarks/.asv/dashboard.
#
#   benchmarks/asv_history.sh [N [BENCH]]
#
# N defaults to 1 (HEAD: what a change that touches performance adds once
# it lands); BENCH is asv's --bench regex, by default the track_ratio_*
# series (a peer's time over cattn's, which survive a noisy machine; '.'
# runs the whole suite).  Each commit is built as a wheel in an
# asv-managed virtualenv (needs `pip install asv virtualenv`); commits
# already recorded are skipped.  The machine is named from its CPU
# (benchmarks/benchmarks/machine.py: vendor, family/model, cattn's SIMD
# level, cores), so each CPU gets its own series and a new kind of machine
# starts its own; CATTN_ASV_MACHINE overrides the name.  Commit the new
# files under benchmarks/results/ afterwards.  Also writes asv's own site
# (`asv publish`, into benchmarks/.asv/html: it needs internet access to
# display, see dashboard.py).
set -euo pipefail
n="${1:-1}"
bench="${2:-track_ratio}"
cd "$(dirname "$0")"
machine="${CATTN_ASV_MACHINE:-$(python benchmarks/machine.py)}"
cpu="$(python -c 'import sys; sys.path.insert(0, "."); from benchmarks.machine import cpu_description; print(cpu_description())')"
asv machine --machine "$machine" --cpu "$cpu" --yes >/dev/null
# asv exits non-zero when a benchmark fails; its results are kept and
# drawn all the same, and the status is passed on.
status=0
asv run --machine "$machine" --skip-existing-commits --show-stderr \
    --bench "$bench" "HEAD~${n}..HEAD" || status=$?
python dashboard.py .asv/dashboard
asv publish >/dev/null
echo "open benchmarks/.asv/dashboard/index.html (it needs no server)"
exit "$status"
