"""MultiHeadAttention figures: cattn vs torch.nn.MultiheadAttention, and
incremental decoding with a cache vs recomputing full attention each step.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_mha.py
"""
import time

import numpy as np

import cattn
from cattn.__main__ import interleaved


def main():
    import torch
    torch.set_num_threads(cattn.show_config(mode="dicts")["openmp"]
                          ["default_threads"])
    rng = np.random.default_rng(0)
    B, L, E, H = 8, 512, 512, 8
    tm = torch.nn.MultiheadAttention(E, H, batch_first=True).eval()
    mha = cattn.MultiHeadAttention(E, H)
    mha.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((B, L, E), dtype=np.float32)
    tx = torch.from_numpy(x)

    def theirs():
        with torch.no_grad():
            return tm(tx, tx, tx, need_weights=False)

    t_c, t_t = interleaved([lambda: mha(x), theirs], rounds=5)
    with torch.no_grad():
        err = np.abs(mha(x) - tm(tx, tx, tx, need_weights=False)[0].numpy()).max()
    print(f"forward B{B} L{L} E{E} H{H} float32 self-attention: cattn "
          f"{t_c * 1e3:.1f} ms, torch {t_t * 1e3:.1f} ms, time(torch)/time(cattn)"
          f" = {t_t / t_c:.2f} (max |diff| {err:.1e})")

    # Greedy-style decoding of T steps, batch 1.
    T = 256
    seq = rng.standard_normal((1, T, E), dtype=np.float32)
    t0 = time.perf_counter()
    cache = mha.new_cache(1, T)
    for t in range(T):
        mha(seq[:, t:t + 1], cache=cache)
    t_cache = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in range(T):
        mha(seq[:, :t + 1], is_causal=True)
    t_full = time.perf_counter() - t0
    print(f"decoding {T} steps (E{E} H{H}): with cache {t_cache * 1e3:.0f} ms, "
          f"recomputing {t_full * 1e3:.0f} ms, ratio {t_full / t_cache:.1f}")


if __name__ == "__main__":
    main()
