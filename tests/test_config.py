"""show_config, CATTN_ISA, threads and threadpoolctl."""
import os
import subprocess
import sys

import numpy as np
import pytest

import cattn
from cattn import _config
from cattn._kernels import _cpu


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=full_env, check=True)


def test_show_config_prints_and_returns(capsys):
    assert cattn.show_config() is None
    text = capsys.readouterr().out
    assert f"cattn {cattn.__version__}" in text
    assert "OpenMP" in text and "SIMD active" in text
    cfg = cattn.show_config(mode="dicts")
    assert cfg["simd"]["active"] == _config.active_isa()
    assert cfg["numpy"]["version"] == np.__version__
    with pytest.raises(ValueError, match="mode"):
        cattn.show_config(mode="json")


# .ci/run also tests a build made with CATTN_DISABLE_OPENMP=1 and tells the
# tests so with CATTN_EXPECT_SERIAL=1.
EXPECT_SERIAL = os.environ.get("CATTN_EXPECT_SERIAL") == "1"
needs_openmp = pytest.mark.skipif(EXPECT_SERIAL, reason="serial build")


def test_openmp_matches_the_build(capsys):
    cfg = cattn.show_config(mode="dicts")
    assert cfg["openmp"]["enabled"] == (_cpu.openmp_version() > 0)
    assert cfg["openmp"]["enabled"] != EXPECT_SERIAL
    cattn.show_config()
    text = capsys.readouterr().out
    assert ("DISABLED (serial build" in text) == EXPECT_SERIAL


@pytest.mark.parametrize("name", _config.supported_isas())
def test_cattn_isa_forces_a_level(name):
    res = run_python("import cattn; print(cattn.show_config(mode='dicts')"
                     "['simd']['active'])", CATTN_ISA=name.upper())
    assert res.stdout.strip() == name


def test_cattn_isa_bad_value_warns():
    res = run_python("import warnings; warnings.simplefilter('always');"
                     "import cattn; print(cattn.show_config(mode='dicts')"
                     "['simd']['active'])", CATTN_ISA="sse9")
    assert "CATTN_ISA='sse9' is not one of" in res.stderr
    assert res.stdout.strip() == _config.supported_isas()[-1]


def test_set_isa_rejects_unsupported_level():
    with pytest.raises(ValueError, match="not supported"):
        _cpu.set_isa(_cpu.best_isa() + 1)


@needs_openmp
def test_omp_num_threads_is_honoured():
    res = run_python("import cattn; print(cattn.show_config(mode='dicts')"
                     "['openmp']['default_threads'])", OMP_NUM_THREADS="3")
    assert res.stdout.strip() == "3"


@needs_openmp
def test_threadpoolctl_limits_default_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    apis = {i["user_api"] for i in threadpoolctl.threadpool_info()}
    assert "openmp" in apis
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert _cpu.max_threads() == 1
        x = np.random.default_rng(0).standard_normal((64, 64))
        np.testing.assert_array_equal(cattn.softmax(x),
                                      cattn.softmax(x, num_threads=2))
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        assert _cpu.max_threads() == 2


def _longest_stall(call):
    """Run `call` in a thread while this thread runs a pure-Python loop;
    return the longest time the loop made no step while the call ran, and
    the call's duration.  A call that held the GIL stalls the loop for all
    of its duration (it cannot run Python without the GIL); one that
    releases it stalls the loop for at most a few switch intervals."""
    import threading
    import time
    span = {}

    def work():
        span["t0"] = time.perf_counter()
        call()
        span["t1"] = time.perf_counter()

    worker = threading.Thread(target=work)
    stamps = []
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
    worker.join()
    t0, t1 = span["t0"], span["t1"]
    inside = [t0] + [t for t in stamps if t0 < t < t1] + [t1]
    return max(b - a for a, b in zip(inside, inside[1:])), t1 - t0


def test_kernels_release_the_gil():
    """Each kernel family lets other Python threads run while it computes:
    a Python loop in the main thread keeps making progress during a long
    kernel call (matmul, softmax, attention forward, top-k selection,
    backward)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 2000))
    # Calls of about 0.2 s or more on a fast core (an Intel Xeon of family
    # 6 model 207, one thread): on a busy machine the scheduler leaves this
    # thread off its core for tens of milliseconds, however the call runs
    # (seen on CI's two cores shared by five test sessions: a free-threaded
    # 3.13's loop stalled 0.055 s beside a worker in time.sleep(0.1); a
    # 0.06 s softmax over the last axis failed there three times in three
    # tries), so each call also has three tries: a held GIL stalls the
    # loop in every one.
    q = rng.standard_normal((1, 1, 8192, 64)).astype(np.float32)
    q2 = np.concatenate([q, q[:, :, ::-1]], axis=1)
    out, lse = cattn.scaled_dot_product_attention(q, q, q, return_lse=True)
    big = rng.standard_normal((3000, 8000))
    calls = {
        "matmul": lambda: cattn.matmul(x, x, num_threads=1),
        "softmax": lambda: cattn.softmax(big, axis=0, num_threads=1),
        "attention": lambda: cattn.scaled_dot_product_attention(
            q2, q2, q2, num_threads=1),
        "top_k": lambda: cattn.scaled_dot_product_attention(
            q, q, q, top_k=4, num_threads=1),
        "backward": lambda: cattn.scaled_dot_product_attention_grad(
            out, q, q, q, out, lse, num_threads=1),
    }
    switch = sys.getswitchinterval()
    for name, call in calls.items():
        tries = []
        while len(tries) < 3:
            stall, seconds = _longest_stall(call)
            assert seconds > 4 * switch, f"{name}: too short to tell"
            tries.append(f"{stall:.3f} s of {seconds:.3f} s")
            if stall < seconds / 2:
                break
        else:
            raise AssertionError(
                f"{name}: Python stalled for over half of each kernel call "
                f"({', '.join(tries)}): the GIL was held")


@needs_openmp
def test_threadpoolctl_lists_cattns_runtime():
    """threadpool_info() finds the OpenMP library the kernels really call
    (in a wheel, the libgomp bundled in cattn.libs/), among any others
    loaded (NumPy's OpenBLAS, PyTorch's libgomp)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    lib = _cpu.openmp_library()
    assert lib is not None
    infos = [i for i in threadpoolctl.threadpool_info()
             if i["filepath"] == lib]
    assert [i["user_api"] for i in infos] == ["openmp"]
    assert cattn.show_config(mode="dicts")["openmp"]["library"] == lib


@needs_openmp
def test_threadpool_limits_limits_cattn(capsys):
    """threadpool_limits(1) (every API, as users call it) caps cattn's
    kernels: the default thread count drops to 1 and show_config says so."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.random.default_rng(2).standard_normal((256, 256))
    want = cattn.matmul(x, x)
    with threadpoolctl.threadpool_limits(1):
        assert _cpu.max_threads() == 1
        cfg = cattn.show_config(mode="dicts")
        assert cfg["openmp"]["default_threads"] == 1
        np.testing.assert_array_equal(cattn.matmul(x, x), want)
        cattn.show_config()
    assert "default threads 1" in capsys.readouterr().out
    assert _cpu.max_threads() == cattn.show_config(
        mode="dicts")["openmp"]["default_threads"]


def test_show_config_lists_other_runtimes(capsys):
    """NumPy's BLAS is loaded in every process that imports cattn; with
    threadpoolctl installed show_config names it."""
    pytest.importorskip("threadpoolctl")
    cattn.show_config()
    out = capsys.readouterr().out
    assert "runtime:         blas/" in out
    if not EXPECT_SERIAL:
        assert "(cattn's)" in out
