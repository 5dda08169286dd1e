"""Reliability: oversubscription, the bad-input matrix, huge inputs and
leaks (many Python threads at once: test_threads.py).

Tests marked `slow` need CATTN_SLOW=1 (they allocate >16 GB or loop 10,000
times); their last results are reported in the closing notes.
"""
import os

import numpy as np
import pytest

import bad_inputs
import cattn
from families import FAMILIES, X

slow = pytest.mark.skipif(os.environ.get("CATTN_SLOW") != "1",
                          reason="set CATTN_SLOW=1 to run")

def test_nested_threadpool_limits_and_oversubscription():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    want = cattn.matmul(X, X.T)
    with threadpoolctl.threadpool_limits(1):
        with threadpoolctl.threadpool_limits(2, user_api="openmp"):
            np.testing.assert_array_equal(cattn.matmul(X, X.T), want)
        np.testing.assert_array_equal(cattn.matmul(X, X.T, num_threads=16),
                                      want)


@pytest.mark.parametrize("call, exc, message", bad_inputs.ROWS,
                         ids=[f"bad{i}" for i in range(len(bad_inputs.ROWS))])
def test_bad_input(call, exc, message):
    """Every bad input of the table (tests/bad_inputs.py) raises its
    documented exception with a message naming the function and the
    argument -- and never crashes the interpreter."""
    with pytest.raises(exc, match=message):
        eval(call, dict(bad_inputs.NAMESPACE))


@slow
def test_softmax_past_2_31_elements():
    """No 32-bit index arithmetic: one row of 2^31 + 3 float32 elements,
    and 2^31 + 17 elements in many rows (~17 GB in all)."""
    n = 2 ** 31 + 3
    x = np.zeros(n, np.float32)
    x[-1] = 1.0
    y = cattn.softmax(x)
    want_last = np.e / (np.e + (n - 1))
    assert abs(float(y[-1]) / want_last - 1) < 1e-3
    del x, y
    rows = np.zeros((2 ** 21 + 1, 1024), np.float32)
    rows[-1, -1] = 5.0
    lse = cattn.logsumexp(rows)
    assert abs(lse[-1] - np.log(np.exp(5.0) + 1023)) < 1e-4
    assert abs(lse[0] - np.log(1024.0)) < 1e-5


def test_impossible_allocation_raises_memory_error():
    huge = np.broadcast_to(np.float32(0), (2 ** 40, 2 ** 10))
    with pytest.raises(MemoryError):
        cattn.softmax(huge)


@slow
def test_no_leaks_over_ten_thousand_calls():

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    for name, fn in FAMILIES.items():
        for _ in range(200):
            fn()
        before = rss_mb()
        for _ in range(10_000):
            fn()
        grown = rss_mb() - before
        assert grown < 8, f"{name}: RSS grew {grown:.1f} MiB"


PEAK_PROBE = """
import sys
import numpy as np
import cattn

def status(field):          # this process's VmRSS or VmHWM, in MiB
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

L = 8192
q = np.random.default_rng(0).standard_normal((1, 1, L, 64)).astype(np.float32)
cattn.scaled_dot_product_attention(q[..., :64, :], q, q)     # warm up
before = status("VmRSS")
if sys.argv[1] == "fused":
    cattn.scaled_dot_product_attention(q, q, q, num_threads=2)
else:                       # the L x S weights, as a check of the probe
    cattn.attention_weights(q, q, num_threads=2) @ q
print(status("VmHWM") - before)
"""


@pytest.mark.parametrize("how", ["fused", "weights"])
def test_fused_attention_never_builds_the_score_matrix(how):
    """The fused kernel's extra memory is O(threads x tile), not O(L·S): at
    L = S = 8192 the float32 score matrix alone would take 256 MiB; the
    peak resident set of a fresh process grows by far less.  The same probe
    building the weights must see them (so the probe can fail)."""
    import subprocess
    import sys
    grown = float(subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, how], capture_output=True,
        text=True, check=True).stdout)
    if how == "fused":
        assert grown < 32, f"peak grew {grown:.1f} MiB"
    else:
        assert grown > 256, f"peak grew only {grown:.1f} MiB"


def test_bad_input_table_in_the_docs_is_current():
    import pathlib
    import sys
    root = pathlib.Path(__file__).resolve().parent.parent
    page = root / "docs" / "bad_inputs.md"
    if not page.exists():
        pytest.skip("docs/ not next to the tests")
    sys.path.insert(0, str(root / "tools"))
    try:
        import bad_inputs_table
    finally:
        sys.path.pop(0)
    assert page.read_text() == bad_inputs_table.render(), (
        "docs/bad_inputs.md is stale: run tools/bad_inputs_table.py")
