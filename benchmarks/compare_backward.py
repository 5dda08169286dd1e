"""The attention backward against torch autograd, and its peak memory.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_backward.py

1. Speed (issue 10's target, >= 1.0): float32, B=4, H=8, L=S=1024, E=64,
   time(torch backward of F.scaled_dot_product_attention) / time(cattn's
   scaled_dot_product_attention_grad), interleaved in one process.  torch's
   side is `out.backward(g, retain_graph=True)` on a graph built once, so
   neither side pays for its forward; also with is_causal=True.
2. Peak memory of the backward at L = S = 16384 (B=1, H=1, E=64, float32),
   each library in a fresh process: VmHWM (the peak resident set) minus
   VmRSS just before the backward, with inputs, out, lse and grad_out
   already resident.  The L x S weights alone would take 1 GiB.
"""
import subprocess
import sys
import textwrap

import numpy as np

import cattn
from cattn.__main__ import interleaved


def speed(torch, causal, rounds=5):
    B, H, L, E = 4, 8, 1024, 64
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((B, H, L, E), dtype=np.float32)
                  for _ in range(4))
    out, lse = cattn.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                  return_lse=True)
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    tout = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, is_causal=causal)
    tg = torch.from_numpy(g)

    def ours():
        cattn.scaled_dot_product_attention_grad(g, q, k, v, out, lse,
                                                is_causal=causal)

    def theirs():
        tq.grad = tk.grad = tv.grad = None
        tout.backward(tg, retain_graph=True)

    t_ours, t_torch = interleaved([ours, theirs], rounds=rounds)
    flops = 5 * 2 * B * H * L * L * E / (2 if causal else 1)
    return t_ours, t_torch, flops


PROBE = textwrap.dedent("""
    import sys
    import numpy as np
    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    L, E = 16384, 64
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((1, 1, L, E), dtype=np.float32)
                  for _ in range(4))
    if sys.argv[1] == "cattn":
        import cattn
        out, lse = cattn.scaled_dot_product_attention(q, k, v,
                                                      return_lse=True)
        small = [x[..., :64, :] for x in (g, q, k, v, out)]
        cattn.scaled_dot_product_attention_grad(*small, lse[..., :64])
        before = status("VmRSS:")
        cattn.scaled_dot_product_attention_grad(g, q, k, v, out, lse)
    else:
        import torch
        torch.set_num_threads(int(sys.argv[2]))
        tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
        before = status("VmRSS:")
        out.backward(torch.from_numpy(g))
    print(status("VmHWM:") - before)
""")


def peak_memory(which, threads):
    run = subprocess.run([sys.executable, "-c", PROBE, which, str(threads)],
                         check=True, capture_output=True, text=True)
    return float(run.stdout)


def main():
    import torch
    threads = cattn.show_config(mode="dicts")["openmp"]["default_threads"]
    torch.set_num_threads(threads)
    print(f"cattn {cattn.__version__}, torch {torch.__version__}, "
          f"{threads} threads")
    for causal in (False, True):
        t_ours, t_torch, flops = speed(torch, causal)
        print(f"backward B4 H8 L=S=1024 E64 f32{' causal' if causal else ''}:"
              f" cattn {t_ours * 1e3:.1f} ms ({flops / t_ours / 1e9:.0f} "
              f"GFLOP/s), torch {t_torch * 1e3:.1f} ms; time(torch)/"
              f"time(cattn) = {t_torch / t_ours:.2f} (target >= 1.0)")
    for which in ("cattn", "torch"):
        print(f"peak memory of the backward, L=S=16384 E64 f32, {which}: "
              f"+{peak_memory(which, threads):.1f} MiB over inputs, out, "
              f"lse and grad_out (the L x S weights: 1024 MiB)")


if __name__ == "__main__":
    main()
