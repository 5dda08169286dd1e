"""Peak memory of the attention backward, cattn against torch autograd.

    python benchmarks/compare_backward.py

At L = S = 16384 (B=1, H=1, E=64, float32), each library in a fresh
process: VmHWM (the peak resident set) minus VmRSS just before the
backward, with inputs, out, lse and grad_out already resident.  The L x S
weights alone would take 1 GiB.  (The backward's speed against torch is an
asv series: ``python benchmarks/compare.py --bench SDPAGradVersusTorch``.)
"""
import subprocess
import sys
import textwrap

import cattn


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
    threads = cattn.show_config(mode="dicts")["openmp"]["default_threads"]
    print(f"cattn {cattn.__version__}, {threads} threads")
    for which in ("cattn", "torch"):
        print(f"peak memory of the backward, L=S=16384 E64 f32, {which}: "
              f"+{peak_memory(which, threads):.1f} MiB over inputs, out, "
              f"lse and grad_out (the L x S weights: 1024 MiB)")


if __name__ == "__main__":
    main()
