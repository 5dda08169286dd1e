"""The current-models targets of softcap, sinks, ALiBi, per-row lengths
and packed sequences in one run: each ratio, its target and whether it is
met.

Run from a venv with cattn and torch==2.13.0 (CPU):

    python benchmarks/compare_variants.py

Case B4 H8 L=S=1024 E64 float32 (per-row lengths: lengths_rows; packed
sequences: varlen_rows; the paged cache: paged_rows).  Two kinds of ratio:

* cost: time(cattn with the option) / time(cattn without it); target
  <= 1.1.  Measured first, before torch has run in the process (its
  spinning worker threads skew what runs after them).
* versus torch: time(torch) / time(cattn with the option); target >= 3.
  ALiBi goes to torch's SDPA as the float mask it would need; softcap
  and sinks have no SDPA argument, so torch runs the eager formulas that
  transformers' Gemma 2 and gpt-oss use (which build the L x S matrix).

Every comparison is one interleaved series (cattn.__main__.interleaved:
A B A B ..., a median of a few calls per turn, the median over turns).
"""
import argparse

import numpy as np

import cattn
from cattn.__main__ import interleaved

B, H, L, E = 4, 8, 1024, 64


def row(name, value, target, below=False):
    met = value <= target if below else value >= target
    sign = "<=" if below else ">="
    print(f"| {name} | {value:.2f} | {sign} {target:g} | "
          f"{'yes' if met else 'NO'} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, H, L, E)).astype(np.float32)
               for _ in range(3))
    slopes = 2.0 ** (-8 * np.arange(1, H + 1) / H)
    sinks = rng.standard_normal(H)
    options = {"softcap": {"softcap": 30.0}, "sinks": {"sinks": sinks},
               "softcap 2 (most scores near the cap)": {"softcap": 2.0},
               "alibi": {"alibi_slopes": slopes},
               "all three": {"softcap": 30.0, "sinks": sinks,
                             "alibi_slopes": slopes}}
    sdpa = cattn.scaled_dot_product_attention
    threads = cattn.show_config(mode="dicts")["openmp"]["default_threads"]
    print(f"cattn {cattn.__version__} "
          f"({cattn.show_config(mode='dicts')['simd']['active']}), "
          f"B{B} H{H} L=S={L} E{E} float32, {threads} threads, "
          f"{args.rounds} rounds\n")
    print("| case | ratio | target | met |\n|---|---|---|---|")
    for causal in (False, True):
        for name, kw in options.items():
            plain, opt = interleaved(
                [lambda: sdpa(q, k, v, is_causal=causal),
                 lambda: sdpa(q, k, v, is_causal=causal, **kw)],
                rounds=args.rounds)
            row(f"cost of {name}{' (causal)' if causal else ''}: "
                f"with / without", opt / plain, 1.1, below=True)

    lengths_rows(args.rounds)
    varlen_rows(args.rounds)
    paged_rows(args.rounds)

    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    bias = torch.from_numpy(
        (-slopes[:, None, None] * np.abs(i - j)).astype(np.float32))
    ts = torch.from_numpy(sinks.astype(np.float32))

    def torch_softcap():
        s = tq @ tk.transpose(-1, -2) * E ** -0.5
        s = torch.tanh(s / 30.0) * 30.0
        return torch.softmax(s, dim=-1) @ tv

    def torch_sinks():
        s = tq @ tk.transpose(-1, -2) * E ** -0.5
        col = ts.reshape(1, -1, 1, 1).expand(B, -1, L, 1)
        s = torch.cat([s, col], dim=-1)
        s = s - s.max(dim=-1, keepdim=True).values
        return torch.softmax(s, dim=-1)[..., :-1] @ tv

    backward_rows(args.rounds, torch, q, k, v, slopes, sinks)

    with torch.inference_mode():
        for name, fn, kw in (
                ("softcap vs torch eager (Gemma 2's formula)",
                 torch_softcap, options["softcap"]),
                ("sinks vs torch eager (gpt-oss's formula)", torch_sinks,
                 options["sinks"]),
                ("ALiBi vs torch SDPA with the bias as a float mask",
                 lambda: F.scaled_dot_product_attention(tq, tk, tv,
                                                        attn_mask=bias),
                 options["alibi"])):
            ours, theirs = interleaved(
                [lambda: sdpa(q, k, v, **kw), fn], rounds=args.rounds)
            row(name, theirs / ours, 3.0)


def backward_rows(rounds, torch, q, k, v, slopes, sinks):
    """The backward with softcap, sinks and ALiBi against torch autograd
    through the eager formula (forward and backward timed together on both
    sides: cattn's forward with lse, then its gradient), target >= 1.0."""
    sdpa = cattn.scaled_dot_product_attention
    grad = cattn.scaled_dot_product_attention_grad
    go = np.ones_like(q)
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    bias = torch.from_numpy(
        (-slopes[:, None, None] * np.abs(i - j)).astype(np.float32))
    ts = torch.from_numpy(sinks.astype(np.float32)).requires_grad_()
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    tgo = torch.from_numpy(go)

    def eager(option):
        s = tq @ tk.transpose(-1, -2) * E ** -0.5
        if option == "softcap":
            s = torch.tanh(s / 30.0) * 30.0
        if option == "alibi":
            s = s + bias
        if option == "sinks":
            col = ts.reshape(1, -1, 1, 1).expand(B, -1, L, 1)
            s = torch.cat([s, col], dim=-1)
            p = torch.softmax(s, dim=-1)[..., :-1]
        else:
            p = torch.softmax(s, dim=-1)
        out = p @ tv
        out.backward(tgo)
        return out

    for name, kw in (("softcap", {"softcap": 30.0}),
                     ("sinks", {"sinks": sinks}),
                     ("alibi", {"alibi_slopes": slopes})):
        def ours():
            out, lse = sdpa(q, k, v, return_lse=True, **kw)
            return grad(go, q, k, v, out, lse, **kw)
        t_ours, t_torch = interleaved([ours, lambda: eager(name)],
                                      rounds=rounds)
        row(f"forward + backward with {name} vs torch autograd (eager)",
            t_torch / t_ours, 1.0)


def lengths_rows(rounds):
    """Per-row lengths, B8 H8 L=S=1024 E64, lengths uniform in [64, 1024]:
    one padded call against the sum over rows of dense calls at each row's
    own length (time with lengths / that sum; target <= 1.15), with both
    lengths (padded sequences) and with key lengths alone (L = 1024)."""
    rng = np.random.default_rng(1)
    Bl, Hl, Ll = 8, 8, 1024
    lens = rng.integers(64, Ll + 1, Bl)
    q, k, v = (rng.standard_normal((Bl, Hl, Ll, E)).astype(np.float32)
               for _ in range(3))
    sdpa = cattn.scaled_dot_product_attention
    for label, both in (("query and key lengths", True),
                        ("key lengths alone", False)):
        for causal in ((False, "bottom_right") if both else (False,)):
            kw = dict(key_lengths=lens, is_causal=causal)
            if both:
                kw["query_lengths"] = lens

            def rows():
                for b, n in enumerate(lens):
                    lq = n if both else Ll
                    sdpa(q[b:b + 1, :, :lq], k[b:b + 1, :, :n],
                         v[b:b + 1, :, :n], is_causal=causal)
            padded, dense = interleaved(
                [lambda: sdpa(q, k, v, **kw), rows], rounds=rounds)
            row(f"{label}{' (causal)' if causal else ''}: padded call / "
                f"sum of dense rows", padded / dense, 1.15, below=True)


def varlen_rows(rounds):
    """varlen_attention, 16 sequences of 32 ... 2048 tokens (geometric), H8
    E64 float32, against one dense call of the same work (B1 H8 L=S =
    sqrt(sum of squared lengths): GFLOP/s ratio, target >= 0.9) and a dense
    call padded to the longest sequence (B16 H8 L=S=2048: time ratio,
    target >= 2), with and without causal attention."""
    rng = np.random.default_rng(2)
    lens = np.geomspace(32, 2048, 16).round().astype(np.int64)
    rng.shuffle(lens)
    cu = np.concatenate([[0], np.cumsum(lens)])
    Hv, Ev = 8, 64
    x = rng.standard_normal((int(cu[-1]), Hv, Ev)).astype(np.float32)
    n = int(round(float(np.sqrt((lens.astype(float) ** 2).sum()))))
    dense = rng.standard_normal((1, Hv, n, Ev)).astype(np.float32)
    pad = rng.standard_normal((16, Hv, 2048, Ev)).astype(np.float32)
    work = 4.0 * Hv * Ev * float((lens.astype(float) ** 2).sum())
    sdpa = cattn.scaled_dot_product_attention
    for causal in (False, True):
        t_var, t_dense, t_pad = interleaved(
            [lambda: cattn.varlen_attention(x, x, x, cu, cu,
                                            is_causal=causal),
             lambda: sdpa(dense, dense, dense, is_causal=causal),
             lambda: sdpa(pad, pad, pad, is_causal=causal)],
            rounds=rounds)
        gf_var = work / (2 if causal else 1) / t_var / 1e9
        gf_dense = 4.0 * Hv * Ev * n * n / (2 if causal else 1) / t_dense / 1e9
        tag = " (causal)" if causal else ""
        print(f"|   varlen {gf_var:.0f} GFLOP/s, dense {gf_dense:.0f} GFLOP/s"
              f" (L=S={n}){tag} | | | |")
        row(f"varlen / dense GFLOP/s{tag}", gf_var / gf_dense, 0.9)
        row(f"padded dense time / varlen time{tag}", t_pad / t_var, 2.0)


def paged_rows(rounds):
    """paged_attention decoding, B16 H32 Hkv8 L1 E128, sequence lengths
    512 ... 4096, pages of 16 tokens in a shuffled pool, against the same
    decode on a contiguous cache with those key lengths (the same bytes
    read): time(contiguous) / time(paged) is the bandwidth ratio, target
    >= 0.9; float32, bfloat16 and int8 pages."""
    import ml_dtypes
    rng = np.random.default_rng(3)
    Bp, Hp, Hkv, Ep, ps = 16, 32, 8, 128, 16
    lens = np.linspace(512, 4096, Bp).astype(np.int64)
    rng.shuffle(lens)
    need = -(-lens // ps)
    pool = int(need.sum())
    order = rng.permutation(pool)
    table = np.full((Bp, int(need.max())), -1, np.int64)
    c = 0
    for b in range(Bp):
        table[b, :need[b]] = order[c:c + need[b]]
        c += need[b]
    q = rng.standard_normal((Bp, Hp, 1, Ep)).astype(np.float32)
    kc = rng.standard_normal((Bp, Hkv, 4096, Ep)).astype(np.float32)
    vc = rng.standard_normal((Bp, Hkv, 4096, Ep)).astype(np.float32)
    # The same keys and values, scattered into pages.
    kp = np.zeros((pool, Hkv, ps, Ep), np.float32)
    vp = np.zeros((pool, Hkv, ps, Ep), np.float32)
    for b in range(Bp):
        for i in range(need[b]):
            n = min(ps, 4096 - i * ps)
            kp[table[b, i], :, :n] = kc[b, :, i * ps:i * ps + n]
            vp[table[b, i], :, :n] = vc[b, :, i * ps:i * ps + n]
    sdpa = cattn.scaled_dot_product_attention
    bf16 = np.dtype(ml_dtypes.bfloat16)
    for name, conv in (("float32", lambda x: x),
                       ("bfloat16", lambda x: x.astype(bf16)),
                       ("int8", lambda x: cattn.quantize(x))):
        kpc, vpc, kcc, vcc = (conv(x) for x in (kp, vp, kc, vc))
        t_paged, t_contig = interleaved(
            [lambda: cattn.paged_attention(q, kpc, vpc, table, lens),
             lambda: sdpa(q, kcc, vcc, enable_gqa=True,
                          key_lengths=lens, is_causal="bottom_right")],
            rounds=rounds)
        item = {"float32": 4, "bfloat16": 2, "int8": 1 + 4 / 32}[name]
        gbs = float(lens.sum()) * Hkv * 2 * Ep * item / t_paged / 1e9
        print(f"|   paged {name}: {gbs:.1f} GB/s of K/V read | | | |")
        row(f"paged decode {name}: contiguous time / paged time",
            t_contig / t_paged, 0.9)


if __name__ == "__main__":
    main()
