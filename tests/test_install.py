"""The package as users get it: one version, the wheel's bundled OpenMP
runtime, no dependence on the source tree.

.ci/run installs the auditwheel-repaired wheel into a fresh venv and runs
the whole suite from outside the checkout with CATTN_EXPECT_WHEEL=1, which
turns on the checks that only make sense there.
"""
import importlib.metadata
import os
import pathlib
import re

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


@needs_wheel
def test_wheel_has_no_native_march():
    """The same wheel runs on any x86-64: only the dispatched kernels use
    AVX2/AVX-512, so the default level can be forced down to generic."""
    cfg = cattn.show_config(mode="dicts")
    assert cfg["simd"]["compiled"] == ["generic", "avx2", "avx512"]
