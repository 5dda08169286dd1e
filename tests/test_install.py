"""The package as users get it: one version, the wheel's bundled OpenMP
runtime, no dependence on the source tree.

.ci/run installs the auditwheel-repaired wheel into a fresh venv and runs
these tests from outside the checkout with CATTN_EXPECT_WHEEL=1, which
turns on the checks that only make sense there.
"""
import importlib.metadata
import os
import pathlib
import platform
import re
import sys

import pytest

import cattn
from cattn._kernels import _cpu

EXPECT_WHEEL = os.environ.get("CATTN_EXPECT_WHEEL") == "1"
PKG = pathlib.Path(cattn.__file__).resolve().parent
REPO = pathlib.Path(__file__).resolve().parents[1]
needs_wheel = pytest.mark.skipif(not EXPECT_WHEEL,
                                 reason="set CATTN_EXPECT_WHEEL=1 (CI)")


def test_version_is_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?",
                        cattn.__version__)


def test_version_single_source():
    """pyproject reads the version from cattn/_version.py, so the wheel's
    metadata and cattn.__version__ cannot disagree."""
    try:
        dist = importlib.metadata.distribution("cattn")
    except importlib.metadata.PackageNotFoundError:
        if EXPECT_WHEEL:
            raise
        pytest.skip("cattn is not installed (source-tree run)")
    if pathlib.Path(dist.locate_file("cattn")).resolve() != PKG:
        pytest.skip("an installed cattn is shadowed by the source tree")
    assert dist.version == cattn.__version__


@needs_wheel
def test_metadata_states_this_interpreter():
    """The wheel's metadata names the CPython range CI builds wheels for
    (3.11 to 3.15, and free-threaded builds), this interpreter among
    them."""
    meta = importlib.metadata.metadata("cattn")
    classifiers = set(meta.get_all("Classifier"))
    assert meta["Requires-Python"] == ">=3.11"
    minors = {f"3.{m}" for m in range(11, 16)}
    stated = {c.rsplit(" :: ", 1)[1] for c in classifiers
              if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert stated == minors
    assert "%d.%d" % sys.version_info[:2] in stated
    assert any(c.startswith("Programming Language :: Python :: Free "
                            "Threading") for c in classifiers)


@needs_wheel
def test_imported_from_the_install_not_the_checkout():
    assert REPO not in PKG.parents
    assert "site-packages" in PKG.parts
    assert not list(PKG.rglob("*.c")), "generated C must not ship"


@needs_wheel
def test_wheel_bundles_its_openmp_runtime():
    """auditwheel copied libgomp into cattn.libs/ and the kernels call that
    copy, whatever libgomp the system has."""
    lib = pathlib.Path(_cpu.openmp_library())
    assert lib.parent == PKG.parent / "cattn.libs"
    assert lib.name.startswith("libgomp")


def _vector_functions(so):
    """Names of the functions of a compiled module that contain a VEX or
    EVEX instruction (AVX and later: a mnemonic with the v prefix, or a
    ymm/zmm/mask register), from its disassembly; None if the module has
    no symbol table to name them (a stripped wheel)."""
    import shutil
    import subprocess
    objdump = shutil.which("objdump")
    if objdump is None:
        return None
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(so)],
                          capture_output=True, text=True, check=True).stdout
    named, vector, fn = set(), set(), None
    for line in text.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if head:
            fn = head.group(1)
            named.add(fn)
            continue
        parts = line.split("\t")
        if fn is None or len(parts) < 2:
            continue
        insn = parts[1].strip()
        if re.match(r"v[a-z]", insn) or re.search(r"%[yz]mm|%k[0-7]", line):
            vector.add(fn)
    if not any("cattn" in n or "pyx" in n for n in named):
        return None                     # stripped: nothing to attribute to
    return vector


@pytest.mark.parametrize("so", sorted((PKG / "_kernels").glob("*.so")),
                         ids=lambda p: p.name.split(".")[0])
def test_no_native_march(so):
    """What was built runs on any x86-64: AVX and AVX-512 instructions occur
    only in the kernels compiled for those levels (each has its level in
    its name and is reached through the run-time dispatch), never in the
    baseline code a CPU without them runs (no -march=native, no global
    -mavx)."""
    if platform.machine() != "x86_64":
        pytest.skip("an x86-64 build's check (AArch64's baseline has NEON)")
    vector = _vector_functions(so)
    if vector is None:
        pytest.skip("no objdump, or a stripped build: nothing to inspect")
    baseline = sorted(f for f in vector if "avx" not in f.lower())
    assert not baseline, (f"{so.name}: AVX instructions outside the "
                          f"dispatched kernels: {baseline[:10]}")


def test_compiled_levels():
    """The build has every level of its architecture, in order."""
    cfg = cattn.show_config(mode="dicts")
    levels = {"x86_64": ["generic", "avx2", "avx512", "avx512_bf16"],
              "aarch64": ["generic", "neon", "neon_bf16"]}
    assert cfg["simd"]["compiled"] == levels.get(platform.machine(),
                                                 ["generic"])
