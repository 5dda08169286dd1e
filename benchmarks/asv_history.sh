#!/usr/bin/env bash
# Benchmark the last N commits of main with asv (in asv-built virtualenvs,
# one wheel per commit), then publish the dashboard and serve it.
#
#   benchmarks/asv_history.sh [N]     (default 10; needs `pip install asv virtualenv`)
#
# Results go to benchmarks/.asv/results, the site to benchmarks/.asv/html;
# open the URL asv preview prints (the site must be served, not opened as a
# file).  Set CATTN_BENCH_QUICK=1 for a fast, coarse pass.
set -euo pipefail
n="${1:-10}"
cd "$(dirname "$0")"
asv machine --yes >/dev/null
asv run --skip-existing-commits --show-stderr "HEAD~${n}..HEAD"
asv publish
exec asv preview
