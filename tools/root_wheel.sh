#!/usr/bin/env bash
# Build SDIST's wheel for a CPython that runs only inside a Debian root (a
# newer glibc: tools/sid_root.sh; another architecture:
# tools/cross_aarch64.sh), with the host's Python and C compiler against
# the root's headers, sysconfig and NumPy, so the wheel links the host's
# glibc and libgomp and keeps the host's manylinux floor.
#
#   bash tools/root_wheel.sh ROOT VENV SDIST OUTDIR   (SDIST: an sdist or its
#                                                      unpacked tree)
#
# VENV is the root's venv of the target interpreter (e.g. /venv3.14),
# holding NumPy.  The compiler is CC (and LDSHARED) from the environment,
# e.g. aarch64-linux-gnu-gcc; the host's gcc by default.  The root's
# /proc must be mounted.  Leaves the unrepaired wheel in OUTDIR (the
# caller repairs it: auditwheel knows the host's policies, and for another
# architecture runs inside the root).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(realpath "$1")"
venv="$2"
sdist="$(realpath "$3")"
out="$(realpath -m "$4")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# What the target interpreter says of itself.
read -r v tag sysdata numpy_include < <(chroot "$root" "$venv/bin/python" -c '
import sys, sysconfig, numpy
print("%d.%d" % sys.version_info[:2], "cp%d%d" % sys.version_info[:2],
      sysconfig._get_sysconfigdata_name(), numpy.get_include())')
mkdir -p "$work/sysconfig" "$out"
cp "$root/usr/lib/python$v/$sysdata.py" "$work/sysconfig/"

# The host's build tools, without isolation (an isolated build would fetch
# build requirements for the host's interpreter anyway, and for nothing).
python -m pip install -q "build>=1" "setuptools>=77" "Cython>=3.0" "numpy>=2"
# setuptools takes the extension suffix and the ABI tag (cp314, cp313t) from
# the target's sysconfig, the Python tag from the running interpreter: set
# it.  CFLAGS come after sysconfig's include directory (the host's own
# Python headers never take part: Debian keeps them under a versioned
# name), and the root's system headers only after the host's (its pyconfig.h
# lives in the multiarch directory).
env _PYTHON_SYSCONFIGDATA_NAME="$sysdata" \
    PYTHONPATH="$work/sysconfig" \
    CFLAGS="${CFLAGS:-} -I$root/usr/include/python$v -idirafter $root/usr/include" \
    CATTN_NUMPY_INCLUDE="$root$numpy_include" \
    python -m build --wheel --no-isolation --outdir "$out" \
        "-C--build-option=--python-tag=$tag" "$sdist"
ls "$out"/cattn-*-"$tag"-*.whl
