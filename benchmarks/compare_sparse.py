"""Sparse attention and structured masks against their dense forms and peers.

    python benchmarks/compare_sparse.py indices [--L 16384] [--pairs 3]
    python benchmarks/compare_sparse.py decode [--S 131072]
    python benchmarks/compare_sparse.py masks [--L 8192]
    python benchmarks/compare_sparse.py dsa [--L 8192]

indices: causal prefill, H=16, E=Ev=128, float32, k=2048 keys per query
drawn at random among those it may see (all of them when fewer; no
locality: the worst case), against cattn's own dense call with the
equivalent folded mask (the index mask and causality in one bool array, as
transformers' eager DeepSeek-V3.2 folds them) and torch's SDPA with it.
decode: one query row per head against a long cache, k=2048 listed keys,
against a dense decode over 2048 keys.  masks: document (8 causal
documents), prefix-LM (a quarter bidirectional) and chunked (1024, causal
in each) masks as bool arrays, and the same structures stated without a
mask (varlen_attention's sequences; prefix=, chunk_size=), against
visible fraction x the unmasked time and torch's flex_attention under
torch.compile.  dsa: a tiny random DeepSeek-V3.2 (index_topk 2048)
prefilling L tokens: peak memory of each attention backend in a fresh
process (float32), time, and logits against eager (float64).

Ratios: cattn._timing.compare (interleaved pairs of batched samples; the
ratio of best samples and the median of per-pair ratios); every engine
gets cattn's thread count.
"""
import argparse
import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np

import cattn
from benchmarks.common import compare, to_torch, torch_or_skip

sdpa = cattn.scaled_dot_product_attention


def random_lists(rng, L, S, k, offset=0):
    """(L, k) int32: for query i, k distinct keys drawn among the
    i + offset + 1 it may see (all of them, then -1s, when fewer)."""
    idx = np.full((L, k), -1, np.int32)
    for i in range(L):
        n = i + offset + 1
        idx[i, :min(n, k)] = (rng.choice(n, k, replace=False) if n > k
                              else np.arange(n))
    return idx


def folded(idx, S):
    """The bool mask (L, S) True where a row lists a key."""
    L = idx.shape[0]
    m = np.zeros((L, S + 1), bool)
    np.put_along_axis(m, np.where(idx < 0, S, idx), True, axis=-1)
    return m[:, :S]


def show(name, c, note=""):
    print(f"  {name:<44} best {c.best:6.2f}  median {c.median:6.2f}  "
          f"({min(c.ours) * 1e3:.1f} ms vs {min(c.peer) * 1e3:.1f} ms)"
          f"{note}", flush=True)


def indices(args):
    rng = np.random.default_rng(0)
    L, H, E, k = args.L, 16, 128, 2048
    q, key, v = (rng.standard_normal((1, H, L, E), dtype=np.float32)
                 for _ in range(3))
    idx = random_lists(rng, L, L, k)
    mask = folded(idx, L)
    sel = idx[None, None]
    pairs = (mask.sum() * H) / (L * L * H)
    print(f"indices: L=S={L} H={H} E=Ev={E} k={k} causal float32, "
          f"{args.threads} threads; listed pairs {pairs:.3f} of L x S "
          f"(the ideal speed-up over an all-tile dense call {1 / pairs:.1f}x,"
          f" over a causal one {0.5 / pairs:.1f}x)")
    ours = lambda: sdpa(q, key, v, indices=sel, is_causal=True,  # noqa: E731
                        num_threads=args.threads)
    dense = lambda: sdpa(q, key, v, attn_mask=mask,  # noqa: E731
                         num_threads=args.threads)
    err = np.abs(ours() - dense()).max()
    print(f"  max |indices - dense with the folded mask| = {err:.2e}")
    show("dense cattn, folded mask / indices", compare(
        ours, dense, pairs=args.pairs))
    torch = torch_or_skip()
    torch.set_num_threads(args.threads)
    tq, tk, tv = (to_torch(torch, x) for x in (q, key, v))
    tm = torch.from_numpy(mask)
    F = torch.nn.functional
    peer = lambda: F.scaled_dot_product_attention(  # noqa: E731
        tq, tk, tv, attn_mask=tm)
    show("torch SDPA, folded mask / indices", compare(
        ours, peer, pairs=args.pairs))


def decode(args):
    rng = np.random.default_rng(0)
    S, H, E, k = args.S, 16, 128, 2048
    q = rng.standard_normal((1, H, 1, E), dtype=np.float32)
    key, v = (rng.standard_normal((1, H, S, E), dtype=np.float32)
              for _ in range(2))
    sel = rng.choice(S, k, replace=False).astype(np.int32)[None, None, None]
    print(f"decode: one query, H={H} E=Ev={E}, a {S}-key cache, k={k} "
          f"listed keys, float32, {args.threads} threads")
    ours = lambda: sdpa(q, key, v, indices=sel,  # noqa: E731
                        num_threads=args.threads)
    short = lambda: sdpa(q, key[:, :, :k], v[:, :, :k],  # noqa: E731
                         num_threads=args.threads)
    full = lambda: sdpa(q, key, v, num_threads=args.threads)  # noqa: E731
    c = compare(short, ours, pairs=args.pairs)
    show(f"indices over {S} / dense over {k}", c,
         "   (target <= 1.5; both repeat their rows: warm in L3)")
    # Cold: every call reads rows no recent call read, as a model's decode
    # step does (its other layers' weights pass through the caches between
    # two attention calls): the dense call over the next k-key window of
    # the cache, the listed one over the next of 16 random lists.
    windows = itertools.cycle(range(0, S - k + 1, k))
    lists = itertools.cycle([rng.choice(S, k, replace=False).astype(
        np.int32)[None, None, None] for _ in range(16)])
    ours_cold = lambda: sdpa(q, key, v, indices=next(lists),  # noqa: E731
                             num_threads=args.threads)

    def short_cold():
        j = next(windows)
        return sdpa(q, key[:, :, j:j + k], v[:, :, j:j + k],
                    num_threads=args.threads)
    show(f"cold: indices over {S} / dense over {k}",
         compare(short_cold, ours_cold, pairs=args.pairs),
         "   (target <= 1.5; fresh rows every call)")
    show(f"dense over {S} / indices", compare(
        ours, full, pairs=args.pairs))


def structures(L):
    i, j = np.arange(L)[:, None], np.arange(L)[None, :]
    return {
        "documents (8, causal)": lambda b, h, qi, ki: (
            (qi // (L // 8) == ki // (L // 8)) & (ki <= qi)),
        "prefix-LM (L/4 bidirectional)": lambda b, h, qi, ki: (
            (ki <= qi) | (ki < L // 4)),
        "chunked 1024 (causal)": lambda b, h, qi, ki: (
            (qi // 1024 == ki // 1024) & (ki <= qi)),
    }, (i, j)


def masks(args):
    rng = np.random.default_rng(0)
    L, H, E = args.L, 16, 128
    q, key, v = (rng.standard_normal((1, H, L, E), dtype=np.float32)
                 for _ in range(3))
    mods, (i, j) = structures(L)
    print(f"masks: L=S={L} H={H} E=Ev={E} float32, {args.threads} threads")
    full = lambda: sdpa(q, key, v, num_threads=args.threads)  # noqa: E731
    try:
        torch = torch_or_skip()
        from torch.nn.attention.flex_attention import (create_block_mask,
                                                       flex_attention)
        torch.set_num_threads(args.threads)
        flex = torch.compile(flex_attention)
        tq, tk, tv = (to_torch(torch, x) for x in (q, key, v))
    except Exception as e:              # noqa: BLE001 -- reported
        print(f"  (no flex_attention: {e})")
        flex = None
    # The same structures stated without a mask: the packed documents as
    # varlen_attention's sequences, the prefix and the chunks as
    # scaled_dot_product_attention's prefix= and chunk_size=.
    tok = [np.ascontiguousarray(x[0].transpose(1, 0, 2))
           for x in (q, key, v)]
    cu = np.arange(0, L + 1, L // 8)
    stated = {
        "documents (8, causal)": lambda: cattn.varlen_attention(
            *tok, cu, cu, is_causal=True, num_threads=args.threads),
        "prefix-LM (L/4 bidirectional)": lambda: sdpa(
            q, key, v, is_causal=True, prefix=L // 4,
            num_threads=args.threads),
        "chunked 1024 (causal)": lambda: sdpa(
            q, key, v, is_causal=True, chunk_size=1024,
            num_threads=args.threads),
    }
    # As a table of 128 x 128 blocks (block_mask, FlexAttention's block
    # size): the blocks a structure reaches at all, causal on top -- exact
    # for whole documents and chunks (a prefix-LM's diagonal blocks need
    # the mask's "or": not a table).
    tables = {name: (mods[name](0, 0, i, j).reshape(
        L // 128, 128, L // 128, 128).any(axis=(1, 3)))
        for name in ("documents (8, causal)", "chunked 1024 (causal)")}
    for name, mod in mods.items():
        m = mod(0, 0, i, j)
        frac = m.mean()
        ours = lambda: sdpa(q, key, v, attn_mask=m,  # noqa: E731
                            num_threads=args.threads)
        forms = [("mask", ours), ("stated", stated[name])]
        if name in tables:
            forms.append(("table", lambda t=tables[name]: sdpa(
                q, key, v, is_causal=True, block_mask=t,
                num_threads=args.threads)))
        for form, call in forms:
            c = compare(call, full, pairs=args.pairs)
            print(f"  {name:<30} {form:<6} visible {frac:.3f}: cattn "
                  f"{min(c.ours):.3f} s, unmasked {min(c.peer):.3f} s; "
                  f"time / (visible x unmasked) = "
                  f"{min(c.ours) / (frac * min(c.peer)):.2f} best, "
                  f"{1 / (frac * c.median):.2f} median  (target <= 1.3)",
                  flush=True)
        got = stated[name]()
        got = got.transpose(1, 0, 2)[None] if got.ndim == 3 else got
        print(f"  {'':<30} max |stated - mask| = "
              f"{np.abs(got - ours()).max():.1e}" + (
                  f", max |table - mask| = "
                  f"{np.abs(forms[2][1]() - ours()).max():.1e}"
                  if name in tables else ""))
        if flex is None:
            continue
        bm = create_block_mask(mod, None, None, L, L, device="cpu")
        peer = lambda: flex(tq, tk, tv, block_mask=bm)  # noqa: E731
        err = np.abs(peer().numpy() - ours()).max()
        show(f"flex_attention compiled / cattn (err {err:.1e})",
             compare(ours, peer, pairs=args.pairs),
             "   (target >= 1.5)")


DSA_PROBE = textwrap.dedent("""
    import sys, time
    import torch, transformers
    import cattn.integrations.transformers as ct
    ct.register()
    impls, L, threads = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    dtype = getattr(torch, sys.argv[4])
    torch.set_num_threads(threads)
    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    # Dense MLPs (first_k_dense_replace = every layer): an expert router's
    # top-k would turn rounding differences into different experts.
    cfg = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
               num_attention_heads=8, num_key_value_heads=8,
               vocab_size=1000, max_position_embeddings=L, q_lora_rank=64,
               kv_lora_rank=64, qk_rope_head_dim=32, qk_nope_head_dim=64,
               v_head_dim=64, index_topk=2048, index_n_heads=4,
               index_head_dim=64, n_routed_experts=4, num_experts_per_tok=2,
               n_group=1, topk_group=1, first_k_dense_replace=2)
    ids = torch.randint(0, 1000, (1, L), generator=torch.Generator(
        ).manual_seed(1))
    out = []
    for impl in impls:
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(
            transformers.AutoConfig.for_model("deepseek_v32", **cfg),
            attn_implementation=impl, dtype=dtype).eval()
        with torch.no_grad():
            model(ids[:, :64])
            before = status("VmRSS:")
            t0 = time.perf_counter()
            logits = model(ids).logits
            took = time.perf_counter() - t0
        out.append((impl, status("VmHWM:") - before, took, logits))
        del model
    ref = {impl: logits for impl, _, _, logits in out}
    for impl, peak, took, logits in out:
        err = [(logits - ref[r]).abs().max().item() if r in ref else -1
               for r in ("eager", "sdpa")]
        print(impl, f"{peak:.0f}", f"{took:.3f}", f"{err[0]:.2e}",
              f"{err[1]:.2e}")
""")


def dsa(args):
    print(f"dsa: tiny random DeepSeek-V3.2 (2 layers, 8 heads, index_topk "
          f"2048, indexer 4 heads), {args.L}-token prefill, "
          f"{args.threads} threads")

    def probe(impls, dtype):
        r = subprocess.run([sys.executable, "-c", DSA_PROBE, ",".join(impls),
                            str(args.L), str(args.threads), dtype],
                           capture_output=True, text=True, check=True)
        return [line.split() for line in r.stdout.strip().splitlines()]

    # Peak memory: one backend per fresh process (VmHWM over the resident
    # set before the forward), float32.
    rows = {impl: probe([impl], "float32")[0]
            for impl in ("cattn", "sdpa", "eager")}
    sdpa_peak = float(rows["sdpa"][1])
    for impl, (_, peak, took, _, _) in rows.items():
        print(f"  float32 {impl:<6} peak {float(peak):7.0f} MiB "
              f"({float(peak) / sdpa_peak:.2f} x sdpa's)  forward "
              f"{float(took):7.2f} s")
    # Logits against eager and sdpa on the same weights, float64 (the
    # indexer scores in float32 whatever the model's dtype, and eager
    # hands it a float mask where sdpa and cattn hand it a bool one: its
    # top-k may break ties among equal scores differently).
    for impl, _, took, e_eager, e_sdpa in probe(["cattn", "sdpa", "eager"],
                                                "float64"):
        print(f"  float64 {impl:<6} max |logits - eager| "
              f"{float(e_eager):.1e}, - sdpa {float(e_sdpa):.1e}  forward "
              f"{float(took):7.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["indices", "decode", "masks", "dsa"])
    ap.add_argument("--L", type=int, default=None)
    ap.add_argument("--S", type=int, default=131072)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    if args.L is None:
        args.L = {"indices": 16384, "masks": 8192, "dsa": 8192}.get(
            args.what, 0)
    simd = cattn.show_config(mode="dicts")["simd"]["active"]
    model = next((line.split(":", 1)[1].strip() for line in open(
        "/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"cattn {cattn.__version__}, SIMD level {simd}, CPU {model}")
    {"indices": indices, "decode": decode, "masks": masks, "dsa": dsa}[
        args.what](args)


if __name__ == "__main__":
    main()
