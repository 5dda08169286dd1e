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
# already recorded are skipped.  CATTN_ASV_MACHINE names the machine
# (default zen4-vm, the project's reference VM).  Commit the new files
# under benchmarks/results/ afterwards.
set -euo pipefail
n="${1:-1}"
bench="${2:-track_ratio}"
machine="${CATTN_ASV_MACHINE:-zen4-vm}"
cd "$(dirname "$0")"
asv machine --machine "$machine" --yes >/dev/null
# asv exits non-zero when a benchmark fails; its results are kept and
# drawn all the same, and the status is passed on.
status=0
asv run --machine "$machine" --skip-existing-commits --show-stderr \
    --bench "$bench" "HEAD~${n}..HEAD" || status=$?
python dashboard.py .asv/dashboard
echo "open benchmarks/.asv/dashboard/index.html (it needs no server)"
exit "$status"
