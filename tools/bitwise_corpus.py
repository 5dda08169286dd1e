"""Bit-for-bit regression corpus: record the outputs of every public
operation on a fixed set of fuzz cases, then check a later build against
them.

    python tools/bitwise_corpus.py record corpus.json   # with the old build
    python tools/bitwise_corpus.py check corpus.json    # with the new build

Each case is drawn from a seeded generator (shapes with edge tiles,
layouts, masks, causal alignments, windows, GQA, top-k, decode shapes,
special values; float32 and float64, and bfloat16, float16 at both
precisions and int8 keys and values) and run at every SIMD level this CPU
has and at 1, 2 and 3 threads; what is stored is a SHA-256 of the output bytes, so a refactor
that must not change results is checked exactly, not to a tolerance.
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

import cattn
from cattn import _config

N_CASES = 200
THREADS = (1, 2, 3)


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


def layout(rng, x):
    kind = rng.integers(4)
    if kind == 1:
        return np.asfortranarray(x)
    if kind == 2 and x.ndim:
        return np.flip(np.flip(x, -1).copy(), -1)
    if kind == 3 and x.ndim:
        return np.repeat(x, 2, axis=-1)[..., ::2]
    return x


def attention_case(seed):
    rng = np.random.default_rng(seed)
    dtype = (np.float32, np.float64)[seed % 2]
    B = int(rng.integers(1, 3))
    Hkv = int(rng.integers(1, 3))
    group = int(rng.integers(1, 3))
    decode = seed % 5 == 0
    L = int(rng.integers(1, 4)) if decode else int(rng.integers(1, 120))
    S = int(rng.choice([int(rng.integers(1, 300)), 1500]))
    E = int(rng.integers(1, 70))
    Ev = int(rng.integers(1, 40))
    q = layout(rng, rng.standard_normal((B, Hkv * group, L, E)).astype(dtype))
    k = layout(rng, rng.standard_normal((B, Hkv, S, E)).astype(dtype))
    v = rng.standard_normal((B, Hkv, S, Ev)).astype(dtype)
    if seed % 7 == 3:
        v[..., S // 2, 0] = np.nan
        v[..., S // 3, -1] = np.inf
    v = layout(rng, v)
    mask = None
    mk = seed % 3
    rows = 1 if seed % 6 < 2 else L         # padding masks: one row
    if mk == 1:
        mask = rng.random((B, 1, rows, S)) < 0.8
    elif mk == 2:
        mask = (rng.standard_normal((1, Hkv * group, rows, S)) * 2).astype(
            dtype)
        if seed % 8 == 2:
            mask = np.swapaxes(np.swapaxes(mask, -1, -2).copy(), -1, -2)
    causal = [False, True, "bottom_right"][int(rng.integers(3))]
    window = None
    if rng.random() < 0.3:
        window = (int(rng.integers(0, 60)), None if rng.random() < 0.5
                  else int(rng.integers(0, 20)))
    kw = dict(is_causal=causal, window=window, enable_gqa=group > 1,
              scale=None if rng.random() < 0.7 else float(rng.normal()))
    top_k = int(rng.integers(1, 8)) if seed % 4 == 1 else None
    return q, k, v, mask, kw, top_k


def run_case(seed, threads):
    q, k, v, mask, kw, top_k = attention_case(seed)
    res = {}
    out, lse = cattn.scaled_dot_product_attention(
        q, k, v, mask, return_lse=True, top_k=top_k, num_threads=threads,
        **kw)
    res["sdpa"] = digest(out, lse)
    res["hard"] = digest(*cattn.hard_attention(
        q, k, v, mask, return_indices=True, num_threads=threads, **kw))
    if q.shape[-2] * k.shape[-2] < 40000:
        res["weights"] = digest(cattn.attention_weights(
            q, k, mask, num_threads=threads, **kw))
    if top_k is None:
        g = np.random.default_rng(seed + 1).standard_normal(out.shape)
        g = g.astype(out.dtype)
        res["grad"] = digest(*cattn.scaled_dot_product_attention_grad(
            g, q, k, v, out, lse, mask, num_threads=threads,
            need_mask_grad=mask is not None and mask.dtype != np.bool_, **kw))
    x = q.reshape(-1, q.shape[-1])
    res["softmax"] = digest(cattn.softmax(x, num_threads=threads),
                            cattn.log_softmax(x, axis=0, num_threads=threads),
                            cattn.logsumexp(x, num_threads=threads))
    res["matmul"] = digest(cattn.matmul(q, np.swapaxes(q, -1, -2),
                                        num_threads=threads))
    return res


N_LOWP = 60


def lowp_case(seed, threads):
    """16-bit storage (bfloat16, float16) at both precisions, and int8 keys
    and values beside a float32 query: the tiled path and the decode rows."""
    import ml_dtypes
    rng = np.random.default_rng(10_000 + seed)
    kind = ("bfloat16", "float16", "int8")[seed % 3]
    B, H = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    L = int(rng.integers(1, 4)) if seed % 4 == 0 else int(rng.integers(1, 150))
    S = int(rng.choice([int(rng.integers(1, 300)), 1100]))
    E = int(rng.choice([int(rng.integers(1, 70)), 64]))
    q, k, v = (rng.standard_normal((B, H, n, E), dtype=np.float32)
               for n in (L, S, S))
    causal = [False, True, "bottom_right"][int(rng.integers(3))]
    res = {}
    if kind == "int8":
        k8, v8 = cattn.quantize(k, E), cattn.quantize(v, E)
        res["sdpa"] = digest(cattn.scaled_dot_product_attention(
            q, k8, v8, is_causal=causal, num_threads=threads))
        return res
    dt = np.dtype(ml_dtypes.bfloat16) if kind == "bfloat16" else np.float16
    q, k, v = (x.astype(dt) for x in (q, k, v))
    for precision in ("default", "highest"):
        out, lse = cattn.scaled_dot_product_attention(
            q, k, v, is_causal=causal, return_lse=True, precision=precision,
            num_threads=threads)
        res[f"sdpa_{precision}"] = digest(out.view(np.uint16), lse)
    return res


def mha_case(seed):
    # The layer runs on the default thread count.
    rng = np.random.default_rng(seed)
    dtype = (np.float32, np.float64)[seed % 2]
    mha = cattn.MultiHeadAttention(32, 4, num_kv_heads=2 if seed % 3 else 4,
                                   dtype=dtype, rng=seed)
    x = rng.standard_normal((2, 9, 32)).astype(dtype)
    pad = np.zeros((2, 9), bool)
    pad[1, 6:] = True
    y = mha(x, key_padding_mask=pad, is_causal=bool(seed % 2))
    (dx, _, _), grads = mha.backward(np.ones_like(y), x,
                                     is_causal=bool(seed % 2))
    cache = mha.new_cache(batch=2, max_len=16)
    steps = [mha(x[:, t:t + 1], cache=cache) for t in range(4)]
    return {"mha": digest(y, dx, *[grads[n] for n in sorted(grads)],
                          *steps)}


def corpus():
    results = {}
    for isa in _config.supported_isas():
        with _config._isa(isa):
            for threads in THREADS:
                for seed in range(N_CASES):
                    for name, h in run_case(seed, threads).items():
                        results[f"{isa}/t{threads}/{seed}/{name}"] = h
                for seed in range(N_LOWP):
                    for name, h in lowp_case(seed, threads).items():
                        results[f"{isa}/t{threads}/lowp{seed}/{name}"] = h
            for seed in range(6):
                for name, h in mha_case(seed).items():
                    results[f"{isa}/{seed}/{name}"] = h
    return results


def main(argv):
    if len(argv) != 3 or argv[1] not in ("record", "check"):
        sys.exit(__doc__)
    got = corpus()
    if argv[1] == "record":
        with open(argv[2], "w") as f:
            json.dump(got, f, indent=0, sort_keys=True)
        print(f"recorded {len(got)} digests")
        return
    with open(argv[2]) as f:
        want = json.load(f)
    missing = sorted(set(want) - set(got))
    differ = sorted(key for key in want if key in got and got[key] != want[key])
    print(f"{len(want)} digests: {len(differ)} differ, {len(missing)} "
          "missing")
    for key in (differ + missing)[:40]:
        print("  ", key)
    sys.exit(1 if differ or missing else 0)


if __name__ == "__main__":
    main(sys.argv)
