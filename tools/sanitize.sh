#!/usr/bin/env bash
# Build cattn with AddressSanitizer + UBSan in a scratch venv and run the
# test suite (or the test files given) under them.  UBSan halts on the first error; leaks are not
# checked here (CPython's own allocations would drown them).  An impossible
# allocation must return NULL (the MemoryError test), not abort.
#
#   tools/sanitize.sh [tests/test_x.py ...] [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
git -C "$root" archive HEAD | tar -x -C "$work"     # a clean tree
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "numpy>=2" scipy pytest threadpoolctl hypothesis ml_dtypes Cython "setuptools>=77" wheel
(cd "$work" && CATTN_SANITIZE=1 "$work/venv/bin/pip" install -q --no-build-isolation --no-deps .)
libasan="$(gcc -print-file-name=libasan.so)"
libubsan="$(gcc -print-file-name=libubsan.so)"
cd "$work"
LD_PRELOAD="$libasan:$libubsan" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-tests}"
