"""scaled_dot_product_attention across its cases, and its peers."""
import numpy as np

import cattn

from .common import (QUICK, ROUNDS, THREADS, best_times, gflops, normal,
                     pick, ratio, threads, torch_or_skip)
from .peers import ENGINES, Unsupported, check

# name: (B, H, Hkv, L, S, E, keyword arguments); every case is kept under
# CATTN_BENCH_QUICK=1, at a tenth of the sequence length.
_L = 128 if QUICK else 1024
CASES = {
    "self": (4, 8, 8, _L, _L, 64, {}),
    "cross": (4, 8, 8, _L // 4, _L, 64, {}),
    "causal": (4, 8, 8, _L, _L, 64, {"is_causal": True}),
    "window": (4, 8, 8, _L, _L, 64, {"window": (128, 0)}),
    "gqa": (4, 8, 2, _L, _L, 64, {"enable_gqa": True}),
    # The shapes of the peer table of issue 32: one long sequence, wide
    # heads, many short sequences.
    "long": (1, 8, 8, 4 * _L, 4 * _L, 64, {}),
    "wide": (1, 16, 16, 2 * _L, 2 * _L, 128, {}),
    "short": (32, 8, 8, _L // 8, _L // 8, 64, {}),
    "decode": (1, 32, 32, 1, 4 * _L, 128, {}),
    # Per-call overhead (validation, layouts, thread start): issue 8's
    # "tiny call", the same size in quick mode.
    "tiny": (1, 1, 1, 8, 8, 16, {}),
}
DTYPES = pick(["float32", "float64"], ["float32"])
# The 16-bit and int8 cases (SDPALowPrecision); "int8kv" is a float32
# query on cattn.quantize'd keys and values, which no peer stores.
LOW_PRECISION = {"cases": pick(["self", "causal", "short", "decode"],
                                ["self"]),
                 "dtypes": pick(["bfloat16", "float16"], ["bfloat16"])}
# Every (case, dtype) a peer is measured on: SDPA's and the 16-bit ones.
GRID = ([(c, d) for c in CASES for d in DTYPES]
        + [(c, d) for c in LOW_PRECISION["cases"]
           for d in LOW_PRECISION["dtypes"]])


def inputs(case, dtype):
    B, H, Hkv, L, S, E, kw = CASES[case]
    q = normal((B, H, L, E), dtype)
    k = normal((B, Hkv, S, E), dtype)
    v = normal((B, Hkv, S, E), dtype)
    return q, k, v, kw


def flops(case):
    """4·B·H·L·S·E (Q·Kᵀ and P·V); half of it for causal attention."""
    B, H, _, L, S, E, kw = CASES[case]
    return 4.0 * B * H * L * S * E / (2 if kw.get("is_causal") else 1)


class SDPA:
    params = [list(CASES), DTYPES, THREADS]
    param_names = ["case", "dtype", "threads"]

    def setup(self, case, dtype, nthreads):
        self.q, self.k, self.v, self.kw = inputs(case, dtype)
        self.nt = threads(nthreads)

    def run(self):
        return cattn.scaled_dot_product_attention(
            self.q, self.k, self.v, num_threads=self.nt, **self.kw)

    def time_sdpa(self, case, dtype, nthreads):
        self.run()

    def peakmem_sdpa(self, case, dtype, nthreads):
        self.run()

    def track_gflops(self, case, dtype, nthreads):
        return gflops(flops(case), self.run)

    track_gflops.unit = "GFLOP/s"


class SDPALowPrecision:
    """16-bit inputs and int8 keys/values ("int8kv": a float32 query on
    cattn.quantize'd K and V): GFLOP/s and the ratios the low-precision
    issue sets, against cattn float32 and torch of the same dtype."""
    params = [LOW_PRECISION["cases"], LOW_PRECISION["dtypes"] + ["int8kv"]]
    param_names = ["case", "dtype"]

    def setup(self, case, dtype):
        q, k, v, self.kw = inputs(case, "float32")
        self.f32 = (q, k, v)
        if dtype == "int8kv":
            self.args = (q, cattn.quantize(k), cattn.quantize(v))
        else:
            self.args = tuple(normal(x.shape, dtype) for x in (q, k, v))

    def run(self):
        return cattn.scaled_dot_product_attention(*self.args, **self.kw)

    def time_sdpa(self, case, dtype):
        self.run()

    def track_gflops(self, case, dtype):
        return gflops(flops(case), self.run)

    track_gflops.unit = "GFLOP/s"

    def track_ratio_float32(self, case, dtype):
        return ratio(lambda: cattn.scaled_dot_product_attention(
            *self.f32, **self.kw), self.run)

    track_ratio_float32.unit = "time(cattn float32)/time(cattn)"


class SDPAVersusPeer:
    """time(peer) / time(cattn) for every attention engine of peers.py that
    is installed (torch, OpenVINO, ONNX Runtime, JAX), on the cases of SDPA
    and SDPALowPrecision, interleaved in one process at one thread count
    -- after both outputs are checked against the float64 reference.  A
    peer that cannot run a case (no operator for it, not installed, or an
    answer outside the dtype's tolerance) is a skip with its reason.
    ``benchmarks/compare.py`` prints the same as a table."""
    params = [list(ENGINES), list(CASES), DTYPES + LOW_PRECISION["dtypes"]]
    param_names = ["peer", "case", "dtype"]

    def setup(self, peer, case, dtype):
        if (case, dtype) not in GRID:
            raise NotImplementedError(f"{case} is not an asv {dtype} case")
        n = cattn.show_config(mode="dicts")["openmp"]["default_threads"]
        try:
            engine = ENGINES[peer](n)
        except ImportError:
            raise NotImplementedError(f"{peer} is not installed") from None
        except Unsupported as e:
            raise NotImplementedError(str(e)) from None
        q, k, v, kw = inputs(case, dtype)

        def ours():
            return cattn.scaled_dot_product_attention(q, k, v, **kw)
        try:
            self.theirs, result = engine.prepare(q, k, v, kw)
            self.theirs()
            check(result(), q, k, v, kw)
        except (Unsupported, AssertionError) as e:
            raise NotImplementedError(str(e)) from None
        self.ours = ours

    def time_peer(self, peer, case, dtype):
        self.theirs()

    def track_ratio(self, peer, case, dtype):
        return ratio(self.theirs, self.ours)

    track_ratio.unit = "time(peer)/time(cattn)"


def _variant(name, H):
    """sdpa keyword arguments of a current-models option (issue 19)."""
    rng = np.random.default_rng(0)
    return {"softcap": {"softcap": 30.0},
            "sinks": {"sinks": rng.standard_normal(H)},
            "alibi": {"alibi_slopes": 2.0 ** (-8 * np.arange(1, H + 1) / H)},
            }[name]


class SDPAVariants:
    """softcap, sinks and ALiBi on the "self" case: the cost of each, time
    without / time with (target >= 1/1.1; higher is better, as for every
    track_ratio series).  Against torch (target >= 3):
    SDPAVariantsVersusTorch, where torch runs its SDPA with ALiBi as a
    float mask and its eager formulas for softcap (Gemma 2) and sinks
    (gpt-oss)."""
    params = [["softcap", "sinks", "alibi"]]
    param_names = ["option"]

    def setup(self, option):
        q, k, v, _ = inputs("self", "float32")
        self.args = (q, k, v)
        self.kw = _variant(option, q.shape[1])

    def time_sdpa(self, option):
        cattn.scaled_dot_product_attention(*self.args, **self.kw)

    def track_ratio_without(self, option):
        return ratio(lambda: cattn.scaled_dot_product_attention(*self.args),
                     lambda: cattn.scaled_dot_product_attention(
                         *self.args, **self.kw))

    track_ratio_without.unit = "time(without)/time(with)"


class SDPAVariantsVersusTorch:
    """time(torch) / time(cattn) for softcap, sinks and ALiBi (see
    SDPAVariants for what torch runs)."""
    params = [["softcap", "sinks", "alibi"]]
    param_names = ["option"]

    def setup(self, option):
        torch_or_skip()
        q, k, v, _ = inputs("self", "float32")
        self.args = (q, k, v)
        self.kw = _variant(option, q.shape[1])

    def track_ratio_torch(self, option):
        torch = torch_or_skip()
        q, k, v = self.args
        tq, tk, tv = (torch.from_numpy(x) for x in self.args)
        L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
        if option == "alibi":
            i, j = np.arange(L)[:, None], np.arange(S)[None, :]
            bias = torch.from_numpy((-self.kw["alibi_slopes"][:, None, None]
                                     * np.abs(i + S - L - j)).astype(
                                         np.float32))

            def theirs():
                return torch.nn.functional.scaled_dot_product_attention(
                    tq, tk, tv, attn_mask=bias)
        else:
            sinks = torch.from_numpy(
                np.asarray(self.kw.get("sinks", np.zeros(1)), np.float32))

            def theirs():
                s = tq @ tk.transpose(-1, -2) * E ** -0.5
                if option == "softcap":
                    return torch.softmax(torch.tanh(s / 30.0) * 30.0,
                                         dim=-1) @ tv
                col = sinks.reshape(1, -1, 1, 1).expand(*s.shape[:-1], 1)
                s = torch.cat([s, col], dim=-1)
                return torch.softmax(s, dim=-1)[..., :-1] @ tv
        with torch.inference_mode():
            return ratio(theirs, lambda: cattn.scaled_dot_product_attention(
                *self.args, **self.kw))

    track_ratio_torch.unit = "time(torch)/time(cattn)"


class SDPAVersusNumpy:
    """The plain composition: matmul, scipy softmax, matmul."""
    params = [["self", "cross", "causal"], DTYPES]
    param_names = ["case", "dtype"]

    def setup(self, case, dtype):
        import scipy.special
        self.softmax = scipy.special.softmax
        self.q, self.k, self.v, self.kw = inputs(case, dtype)
        L, S = self.q.shape[-2], self.k.shape[-2]
        self.bias = np.where(np.tril(np.ones((L, S), bool)), 0, -np.inf
                             ).astype(dtype) if self.kw else None

    def numpy_attention(self):
        s = np.matmul(self.q, np.swapaxes(self.k, -1, -2))
        s *= s.dtype.type(self.q.shape[-1] ** -0.5)
        if self.bias is not None:
            s += self.bias
        return np.matmul(self.softmax(s, axis=-1), self.v)

    def time_numpy_attention(self, case, dtype):
        self.numpy_attention()

    def peakmem_numpy_attention(self, case, dtype):
        self.numpy_attention()

    def track_ratio_numpy(self, case, dtype):
        return ratio(self.numpy_attention,
                     lambda: cattn.scaled_dot_product_attention(
                         self.q, self.k, self.v, **self.kw))

    track_ratio_numpy.unit = "time(numpy)/time(cattn)"


# The sequence-length sweep behind the docs' performance plot (tutorial 5):
# float32 self-attention, B=1, H=8, E=64, L = S.
SWEEP_LENGTHS = pick([256, 512, 1024, 2048, 4096], [128])
SWEEP_IMPLS = ["cattn", "numpy", "torch"]


def _sweep_contenders(L):
    """{impl: zero-argument call} for one sequence length."""
    import scipy.special
    q = normal((1, 8, L, 64), "float32")
    k = normal((1, 8, L, 64), "float32")
    v = normal((1, 8, L, 64), "float32")
    scale = np.float32(64 ** -0.5)

    def numpy_attention():
        s = np.matmul(q, np.swapaxes(k, -1, -2))
        s *= scale
        return np.matmul(scipy.special.softmax(s, axis=-1), v)

    calls = {"cattn": lambda: cattn.scaled_dot_product_attention(q, k, v),
             "numpy": numpy_attention}
    try:
        torch = torch_or_skip()
    except NotImplementedError:
        return calls
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))

    def torch_sdpa():
        with torch.no_grad():
            return torch.nn.functional.scaled_dot_product_attention(tq, tk,
                                                                    tv)
    calls["torch"] = torch_sdpa
    return calls


class SeqLenSweep:
    """GFLOP/s of float32 self-attention against L for cattn, the NumPy
    composition (matmul, scipy softmax, matmul) and torch SDPA.

    All three are timed in `setup_cache`, taking turns per length in one
    process (A B C A B C; the best of ROUNDS batched samples each), so each
    length's three figures share the same machine conditions; the
    `track_` benchmark only reports them.
    """
    params = [SWEEP_LENGTHS, SWEEP_IMPLS]
    param_names = ["L", "impl"]
    timeout = 900

    def setup_cache(self):
        results = {}
        for L in SWEEP_LENGTHS:
            calls = _sweep_contenders(L)
            times = best_times(list(calls.values()), ROUNDS)
            for impl, seconds in zip(calls, times):
                results[L, impl] = 4.0 * 8 * L * L * 64 / seconds / 1e9
        return results

    def setup(self, results, L, impl):
        if (L, impl) not in results:   # in setup, asv reports a skip
            raise NotImplementedError(f"{impl} is not installed")

    def track_gflops(self, results, L, impl):
        return results[L, impl]

    track_gflops.unit = "GFLOP/s"


def grad_inputs(case):
    """(q, k, v, keywords, out, lse, grad_out) of a case, float32."""
    q, k, v, kw = inputs(case, "float32")
    out, lse = cattn.scaled_dot_product_attention(q, k, v, return_lse=True,
                                                  **kw)
    return q, k, v, kw, out, lse, normal(out.shape, "float32")


class SDPAGrad:
    """The backward: scaled_dot_product_attention_grad, float32."""
    params = [["self", "causal", "gqa"]]
    param_names = ["case"]

    def setup(self, case):
        self.args = grad_inputs(case)

    def run(self):
        q, k, v, kw, out, lse, g = self.args
        return cattn.scaled_dot_product_attention_grad(g, q, k, v, out, lse,
                                                       **kw)

    def time_grad(self, case):
        self.run()

    def peakmem_grad(self, case):
        self.run()


class SDPAGradVersusTorch:
    """time(torch autograd backward of SDPA) / time(cattn's grad),
    interleaved; torch's graph is built once, so neither side pays for a
    forward."""
    params = SDPAGrad.params
    param_names = SDPAGrad.param_names

    def setup(self, case):
        torch = torch_or_skip()
        self.args = grad_inputs(case)
        q, k, v, kw, _, _, g = self.args
        tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
        out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv,
                                                               **kw)
        tg = torch.from_numpy(g)

        def torch_backward():
            tq.grad = tk.grad = tv.grad = None
            out.backward(tg, retain_graph=True)
        self.torch_backward = torch_backward

    def track_ratio_torch(self, case):
        return ratio(self.torch_backward, lambda: SDPAGrad.run(self))

    track_ratio_torch.unit = "time(torch)/time(cattn)"


class TopK:
    """hard_attention and top-k attention against full attention."""
    params = [["hard", "top_k=32"]]
    param_names = ["kind"]

    def setup(self, kind):
        self.q, self.k, self.v, _ = inputs("self", "float32")

    def run(self, kind):
        if kind == "hard":
            return cattn.hard_attention(self.q, self.k, self.v)
        return cattn.scaled_dot_product_attention(self.q, self.k, self.v,
                                                  top_k=32)

    def time_select(self, kind):
        self.run(kind)

    def track_ratio_full(self, kind):
        return ratio(lambda: cattn.scaled_dot_product_attention(
            self.q, self.k, self.v), lambda: self.run(kind))

    track_ratio_full.unit = "time(full attention)/time(cattn)"


class SDPABatchesOfLengths:
    """Batches of different lengths (issue 19), each against what it
    replaces: per-row key lengths against the sum of dense calls at each
    row's length (time(rows) / time(padded), target >= 0.87, i.e. <= 1.15
    the other way); varlen_attention against a dense call padded to the
    longest sequence (target >= 2); paged decoding against the same decode
    on a contiguous cache with key lengths (target >= 0.9)."""
    params = [["key_lengths", "varlen", "paged"]]
    param_names = ["layout"]

    def setup(self, layout):
        rng = np.random.default_rng(0)
        n = _L
        if layout == "key_lengths":
            self.lens = rng.integers(n // 16, n + 1, 8)
            self.q = normal((8, 8, n, 64), "float32")
        elif layout == "varlen":
            self.lens = np.geomspace(max(n // 32, 2), 2 * n, 16).astype(int)
            self.cu = np.concatenate([[0], np.cumsum(self.lens)])
            self.x = normal((int(self.cu[-1]), 8, 64), "float32")
            self.pad = normal((16, 8, 2 * n, 64), "float32")
        else:
            ps, S = 16, 4 * n
            self.lens = np.linspace(S // 8, S, 16).astype(np.int64)
            need = -(-self.lens // ps)
            order = rng.permutation(int(need.sum()))
            self.table = np.full((16, int(need.max())), -1, np.int64)
            c = 0
            for b in range(16):
                self.table[b, :need[b]] = order[c:c + need[b]]
                c += need[b]
            self.q = normal((16, 32, 1, 128), "float32")
            self.pages = normal((int(need.sum()), 8, ps, 128), "float32")
            self.kc = normal((16, 8, S, 128), "float32")

    def run(self):
        sdpa = cattn.scaled_dot_product_attention
        if hasattr(self, "cu"):
            return cattn.varlen_attention(self.x, self.x, self.x, self.cu,
                                          self.cu)
        if hasattr(self, "table"):
            return cattn.paged_attention(self.q, self.pages, self.pages,
                                         self.table, self.lens)
        return sdpa(self.q, self.q, self.q, query_lengths=self.lens,
                    key_lengths=self.lens)

    def time_attention(self, layout):
        self.run()

    def track_ratio(self, layout):
        sdpa = cattn.scaled_dot_product_attention
        if layout == "key_lengths":
            def peer():
                for b, n in enumerate(self.lens):
                    x = self.q[b:b + 1, :, :n]
                    sdpa(x, x, x)
        elif layout == "varlen":
            def peer():
                sdpa(self.pad, self.pad, self.pad)
        else:
            def peer():
                sdpa(self.q, self.kc, self.kc, enable_gqa=True,
                     key_lengths=self.lens, is_causal="bottom_right")
        return ratio(peer, self.run)

    track_ratio.unit = "time(what it replaces)/time(cattn)"


def _listed(L, k, seed=0):
    """(L, k) int32 lists: for query i, k keys at random among the i + 1
    it may see under a causal mask (all of them, then -1s, when fewer)."""
    rng = np.random.default_rng(seed)
    idx = np.full((L, k), -1, np.int32)
    for i in range(L):
        idx[i, :min(i + 1, k)] = (rng.choice(i + 1, k, replace=False)
                                  if i + 1 > k else np.arange(i + 1))
    return idx


class SparseAttention:
    """Sparse attention (indices, DeepSeek Sparse Attention's per-query
    key lists, k = L/8 keys at random among the visible ones: no
    locality) against cattn's dense call with the lists folded into a bool
    mask, as transformers' eager backend folds them (higher is better);
    and structured bool masks (8 causal documents, prefix-LM, chunks)
    against the unmasked call, the ratio to be read against the
    visible fraction (the mask's empty tiles are skipped).  Chunks of
    L/16, causal in each (Llama 4's chunked attention).  "*_stated": the
    same prefix and chunks without a mask (prefix=, chunk_size=), and the
    documents as a table of blocks (block_mask).  B1 H8 E64 float32.  The
    issue's full-size targets: benchmarks/compare_sparse.py."""
    params = [["indices", "documents", "prefix", "chunks", "prefix_stated",
               "chunks_stated", "blocks_stated"]]
    param_names = ["case"]

    def setup(self, case):
        L = 512 if QUICK else 4096
        self.q, self.k, self.v = (normal((1, 8, L, 64), "float32")
                                  for _ in range(3))
        i, j = np.arange(L)[:, None], np.arange(L)[None, :]
        if case == "indices":
            self.sel = _listed(L, L // 8)[None, None]
            mask = np.zeros((L, L + 1), bool)
            np.put_along_axis(mask, np.where(self.sel[0, 0] < 0, L,
                                             self.sel[0, 0]), True, axis=-1)
            self.mask = mask[:, :L]
        else:
            self.sel = None
            self.mask = {
                "documents": (i // (L // 8) == j // (L // 8)) & (j <= i),
                "prefix": (j <= i) | (j < L // 4),
                "chunks": (i // (L // 16) == j // (L // 16)) & (j <= i),
                "prefix_stated": None, "chunks_stated": None,
                "blocks_stated": None,
            }[case]
        self.stated = {"prefix_stated": dict(is_causal=True, prefix=L // 4),
                       "chunks_stated": dict(is_causal=True,
                                             chunk_size=L // 16),
                       "blocks_stated": dict(is_causal=True,
                                             block_mask=np.eye(8, dtype=bool),
                                             block_size=L // 8)}.get(case)

    def run(self):
        if self.sel is not None:
            return cattn.scaled_dot_product_attention(
                self.q, self.k, self.v, indices=self.sel, is_causal=True)
        if self.stated is not None:
            return cattn.scaled_dot_product_attention(
                self.q, self.k, self.v, **self.stated)
        return cattn.scaled_dot_product_attention(self.q, self.k, self.v,
                                                  attn_mask=self.mask)

    def time_sdpa(self, case):
        self.run()

    def track_ratio_dense(self, case):
        dense = (lambda: cattn.scaled_dot_product_attention(
            self.q, self.k, self.v, attn_mask=self.mask)) \
            if self.sel is not None else (
            lambda: cattn.scaled_dot_product_attention(self.q, self.k,
                                                       self.v))
        return ratio(dense, self.run)

    track_ratio_dense.unit = "time(dense)/time(sparse)"
