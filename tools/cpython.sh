#!/usr/bin/env bash
# Print the interpreter of CPython X.Y:  bash tools/cpython.sh 3.12
#
# pythonX.Y on PATH if it runs (a pyenv shim of a version that is not
# selected does not), else pyenv's newest X.Y; exit 1 if neither exists.
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
echo "cpython.sh: no CPython $v (neither python$v nor pyenv's)" >&2
exit 1
