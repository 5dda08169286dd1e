#!/usr/bin/env bash
# A Debian sid root holding the CPythons newer than the host's: the
# interpreters the x86-64 wheels for 3.14 and 3.15 are built against
# (tools/root_wheel.sh) and tested in (run as root: debootstrap, chroot).
#
#   bash tools/sid_root.sh [ROOT]
#
# Their binaries need glibc >= 2.38 (3.14) and 2.42 (3.15), newer than
# the host's 2.36, so they run only inside the root; the wheels are built
# on the host, with the host's compiler against the root's headers, and
# keep the host's manylinux_2_34 floor.
#
# ROOT (default /var/tmp/cattn-sid) gets a minimal sid with python3.14 and
# python3.15 (headers and venv), and /venv3.14, /venv3.15 each with NumPy
# (the headers a build needs); made if missing (about 40 s and 500 MB),
# else reused.  The sid archive is the URI of the host's own
# debian.sources; bookworm's keyring verifies it.  The root's /proc is
# left mounted for the caller (chroot_run below), who unmounts it.
set -euo pipefail
root="${1:-/var/tmp/cattn-sid}"
versions="3.14 3.15"

if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
fi
uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources \
       2>/dev/null || true)"
uri="${uri:-http://deb.debian.org/debian}"

if [ ! -e "$root/venv3.15/pyvenv.cfg" ]; then  # (bin/python links inside the root)
    umount "$root/proc" 2>/dev/null || true
    rm -rf --one-file-system "$root"
    include=""
    for v in $versions; do include+="python$v-dev,python$v-venv,"; done
    debootstrap --variant=minbase --include="${include%,}" sid "$root" "$uri" \
        >/dev/null
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    for v in $versions; do
        env -u PIP_FIND_LINKS chroot "$root" /bin/sh -c "python$v -m venv /venv$v \
            && /venv$v/bin/pip install -q --upgrade pip \
            && /venv$v/bin/pip install -q --only-binary :all: numpy"
    done
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
for v in $versions; do
    echo "$v: $(chroot "$root" "/venv$v/bin/python" -c \
        'import sys, numpy; print(sys.version.split()[0], "numpy", numpy.__version__)')"
done
