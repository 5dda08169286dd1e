"""The foundation's figures: cattn vs SciPy softmax and NumPy (OpenBLAS) matmul.

Run from a venv with cattn, scipy and threadpoolctl installed:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_foundation.py

(OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow numpy's BLAS on this machine:
unset them for this command only.)  Each pair is timed interleaved, A B A B,
and the medians are compared; ratios > 1 mean cattn is faster.
"""
import argparse
import os

import numpy as np
import scipy.special
import threadpoolctl

import cattn
from cattn.__main__ import interleaved


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    print("OPENBLAS_CORETYPE =", os.environ.get("OPENBLAS_CORETYPE"),
          "OPENBLAS_L2_SIZE =", os.environ.get("OPENBLAS_L2_SIZE"))
    for info in threadpoolctl.threadpool_info():
        print(f"  {info['user_api']}: {info['internal_api']} "
              f"{info.get('version')} arch={info.get('architecture')} "
              f"threads={info['num_threads']}")
    cattn.show_config()

    x = rng.standard_normal((4096, 4096)).astype(np.float32)
    t_c, t_s = interleaved([lambda: cattn.softmax(x, axis=-1),
                            lambda: scipy.special.softmax(x, axis=-1)],
                           rounds=args.rounds, repeat=3)
    print(f"\nsoftmax float32 (4096, 4096): scipy {t_s * 1e3:.1f} ms, cattn "
          f"{t_c * 1e3:.1f} ms, time(scipy)/time(cattn) = {t_s / t_c:.2f}")

    n = 2048
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        t_c, t_n = interleaved([lambda: cattn.matmul(a, b),
                                lambda: np.matmul(a, b)], rounds=args.rounds,
                               repeat=3)
        g_c, g_n = 2 * n ** 3 / t_c / 1e9, 2 * n ** 3 / t_n / 1e9
        print(f"matmul {np.dtype(dtype).name} {n}^3: cattn {g_c:.1f} GFLOP/s, "
              f"numpy {g_n:.1f} GFLOP/s, ratio {g_c / g_n:.2f}")


if __name__ == "__main__":
    main()
