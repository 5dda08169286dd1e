#!/usr/bin/env bash
# A free-threaded CPython 3.13 (3.13t) for building and testing the cp313t
# wheel, compiled from Debian trixie's python3.13 source package (its
# .orig.tar.xz is upstream's Python-3.13.5.tar.xz): no free-threaded
# binary is packaged for Debian 12, and python.org is out of reach here.
#
#   bash tools/cpython_ft.sh [PREFIX]
#
# Installs into PREFIX (default /var/tmp/cattn-cpython-3.13t) unless a
# python3.13t is there already, and prints its path.  No PGO/LTO, -O1
# (tests need a correct interpreter, not the fastest) and no test modules.  The trixie source entry lives in a
# private APT configuration (APT_CONFIG), never in /etc/apt.
set -euo pipefail
prefix="${1:-/var/tmp/cattn-cpython-3.13t}"
py="$prefix/bin/python3.13t"
if [ -x "$py" ] && "$py" -c 'import sys; sys.exit(sys._is_gil_enabled())'; then
    echo "$py"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources \
       2>/dev/null || true)"
uri="${uri:-http://deb.debian.org/debian}"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" \
    > "$work/apt/sources.list"
cat > "$work/apt/apt.conf" <<EOF
Dir::Etc::SourceList "$work/apt/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$work/apt/lists";
Dir::Cache "$work/apt/cache";
APT::Sandbox::User "root";
EOF
export APT_CONFIG="$work/apt/apt.conf"
apt-get update -qq
(cd "$work/src" && apt-get source -qq --download-only python3.13/trixie 2>/dev/null)
tarball="$(ls "$work"/src/python3.13_3.13.*.orig.tar.xz)"
tar -xJf "$tarball" -C "$work"
# The build needs the usual -dev headers (ssl for pip, zlib, ffi, ...).
need=()
for pkg in libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    unset APT_CONFIG
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
cd "$work"/Python-3.13.*/
# -O1 without -g: a shorter compile than the default -O3 -g, for
# an interpreter that runs a test subset.
./configure -q --disable-gil --disable-test-modules --without-ensurepip \
    --prefix="$prefix" OPT="-DNDEBUG -O1 -Wall" >/dev/null
make -s -j"$(nproc)" >/dev/null 2>&1
make -s install >/dev/null 2>&1
"$py" -c 'import sys; assert not sys._is_gil_enabled(), "GIL on"'
echo "$py"
