#!/usr/bin/env bash
# Print the interpreter of CPython X.Y (or X.Yt, free-threaded) that runs
# on this host:  bash tools/cpython.sh 3.12
#
# pythonX.Y on PATH if it runs (a pyenv shim of a version that is not
# selected does not), else pyenv's newest X.Y, else the one
# tools/cpython_ft.sh builds (3.13t); exit 1 if none exists.
set -euo pipefail
v="$1"
found="$(command -v "python$v" || true)"
if [ -n "$found" ] && "$found" -c "import sys" 2>/dev/null; then
    echo "$found"
    exit 0
fi
if command -v pyenv >/dev/null; then
    found="$(ls -d "$(pyenv root)"/versions/"$v".*/bin/"python$v" 2>/dev/null \
             | sort -V | tail -n 1)"
    if [ -n "$found" ]; then
        echo "$found"
        exit 0
    fi
fi
found="/var/tmp/cattn-cpython-$v/bin/python$v"
if [ -x "$found" ] && "$found" -c "import sys" 2>/dev/null; then
    echo "$found"
    exit 0
fi
echo "cpython.sh: no CPython $v (not on PATH, in pyenv, nor from tools/cpython_ft.sh)" >&2
exit 1
