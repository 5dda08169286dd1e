"""Peak memory of self-attention at L = S = 65536, E = 64, float32.

    python benchmarks/rss_self_attention.py

Prints the RSS growth during the call, with inputs and outputs already
resident: the fused kernel needs only its packed K/V and per-thread tiles
(a NumPy composition would build a 16 GiB score matrix).
"""
import time

import numpy as np

import cattn
from benchmarks.common import status_mib


def main(L=65536, E=64):
    x = np.random.default_rng(0).standard_normal((L, E), dtype=np.float32)
    out = np.zeros_like(x)                      # resident before the call
    before = status_mib("VmRSS")
    t0 = time.perf_counter()
    cattn.self_attention(x, out=out)
    seconds = time.perf_counter() - t0
    peak = status_mib("VmHWM")
    print(f"L=S={L} E={E} float32 self-attention: {seconds:.1f} s, "
          f"{4 * L * L * E / seconds / 1e9:.0f} GFLOP/s; RSS before "
          f"{before:.1f} MiB (inputs + outputs {2 * x.nbytes / 2**20:.0f} "
          f"MiB), peak {peak:.1f} MiB, growth {peak - before:.1f} MiB")


if __name__ == "__main__":
    main()
