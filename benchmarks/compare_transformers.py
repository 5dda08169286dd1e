"""cattn as the attention backend of a transformers model, against
transformers' ``sdpa`` and ``eager`` backends: the table of issue 20.

Run from a venv with cattn[transformers] and torch==2.13.0 (CPU):

    python benchmarks/compare_transformers.py

Cases, each in float32 and bfloat16, on a Llama-style model of 110M
parameters with random weights (benchmarks/benchmarks/bench_transformers.py,
which is also the asv case):

* prefill: one forward over 2048 tokens (logits of the last one);
* decode: 64 greedy tokens after 8192 cached tokens, the cache a
  StaticCache (written in place) and, for comparison, transformers'
  default DynamicCache (which copies the whole cache at every token);
* peak memory: a Gemma 2-style model (logit softcap 50, sliding windows
  of 4096 on alternate layers) over 8192 tokens, each backend in a child
  process of its own.

The backends take turns in one process on one set of weights (A B C,
C B A, ...).  Ratios are sdpa's time over cattn's, two ways: the ratio of
the best times, and the median of the per-round ratios (with their range).
"Attention" is the time spent inside the attention calls; "peak" is the
growth of the peak RSS over one call, each backend's measured in a fresh
process of its own.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks.bench_transformers import (BACKENDS, LLAMA_100M, Timed,
                                           decode, prefill, turns)
from benchmarks.common import status_mib, write_docs_table

# Rows of the docs table (--write-docs): case, then per backend tokens/s
# (attention seconds), then sdpa/cattn whole model and attention.
DOCS_ROWS = []

GEMMA2_STYLE = dict(hidden_size=768, intermediate_size=2048,
                    num_hidden_layers=4, num_attention_heads=8,
                    num_key_value_heads=4, head_dim=96,
                    query_pre_attn_scalar=96, vocab_size=32000,
                    attn_logit_softcapping=50.0,
                    final_logit_softcapping=30.0, sliding_window=4096,
                    max_position_embeddings=16384)


def peak_growth(work):
    """MiB by which the peak RSS rises above the RSS before `work()`
    (writing 5 to clear_refs resets the peak to what is resident now).
    malloc_trim first hands back what earlier calls freed, which would
    otherwise stay resident and hide this call's allocations."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_mib("VmRSS")
    work()
    return status_mib("VmHWM") - before


def ratios(results, which):
    """(best-time ratio, median per-round ratio, min, max) sdpa/cattn."""
    s = np.array([t[which] for t in results["sdpa"]])
    c = np.array([t[which] for t in results["cattn"]])
    per = s / c
    return s.min() / c.min(), np.median(per), per.min(), per.max()


def report(name, results, peaks, work_units, unit):
    print(f"\n### {name}\n")
    print(f"| backend | best time (s) | {unit} | attention (s) | "
          f"attention share | peak growth (MiB) |\n|---|---|---|---|---|---|")
    for b, ts in results.items():
        best = min(ts)
        print(f"| {b} | {best[0]:.3f} | {work_units / best[0]:.1f} | "
              f"{best[1]:.3f} | {best[1] / best[0]:.0%} | {peaks[b]:.0f} |")
    for label, which in (("whole model", 0), ("attention", 1)):
        best, med, lo, hi = ratios(results, which)
        print(f"\nsdpa/cattn, {label}: best-time ratio {best:.2f}, median "
              f"per-round {med:.2f} (range {lo:.2f}-{hi:.2f})")
    sys.stdout.flush()
    best = {b: min(ts) for b, ts in results.items()}
    DOCS_ROWS.append((name, *(
        f"{work_units / best[b][0]:.1f} ({best[b][1]:.2f} s)"
        for b in BACKENDS), *(f"{ratios(results, w)[0]:.2f}"
                              for w in (0, 1))))


CASES = {"prefill": "prefill 2048 tokens",
         "static": "decode 64 tokens after 8192 cached, StaticCache",
         "dynamic": "decode 64 tokens after 8192 cached, DynamicCache "
                    "(generate's default)",
         "gemma2": "Gemma 2-style model (softcap 50, windows of 4096 on "
                   "alternate layers), prefill 8192 tokens"}


def make_model(timed, case, dtype):
    import torch
    if case == "gemma2":
        return timed.model("gemma2", **GEMMA2_STYLE).to(getattr(torch, dtype))
    return timed.model(**LLAMA_100M).to(getattr(torch, dtype))


def make_work(timed, model, case):
    """The call a case times, on `model` (its inputs made here)."""
    import torch
    g = torch.Generator().manual_seed(2)
    vocab = model.config.vocab_size
    if case in ("prefill", "gemma2"):
        prompt = torch.randint(0, vocab, (1, 8192 if case == "gemma2"
                                          else 2048), generator=g)
        return lambda: prefill(model, prompt)
    ids = torch.randint(0, vocab, (1, 8193), generator=g)
    cache = timed.filled_cache(model, 8192, 64, static=case == "static")
    return lambda: decode(model, cache, ids, 64)


def child(spec):
    """In a process of its own: one call of `case` with `backend`; prints
    a JSON line (peak growth, seconds, attention seconds, or the error)."""
    backend, case, dtype = spec.split(",")
    timed = Timed()
    timed.backend = backend
    work = make_work(timed, make_model(timed, case, dtype), case)
    t0 = time.perf_counter()
    try:
        peak = peak_growth(work)
    except Exception as e:          # sdpa refuses softcap: report it
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return
    print(json.dumps({"peak": peak, "seconds": time.perf_counter() - t0,
                      "attention": timed.seconds}))


def child_runs(case, dtype):
    """Per backend, the child's JSON result: peaks measured in fresh
    processes, since in one process what earlier calls left in the
    allocator's free lists blurs the next call's peak."""
    out = {}
    for b in BACKENDS:
        run = subprocess.run(
            [sys.executable, __file__, "--child", f"{b},{case},{dtype}"],
            capture_output=True, text=True, env=os.environ)
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"child {b} {case} failed:\n{run.stderr}")
        out[b] = json.loads(lines[-1])
    return out


def llama_cases(timed, dtype, rounds):
    model = make_model(timed, "prefill", dtype)
    for case, units in (("prefill", 2048), ("static", 64), ("dynamic", 64)):
        peaks = {b: r.get("peak", float("nan"))
                 for b, r in child_runs(case, dtype).items()}
        work = make_work(timed, model, case)
        report(f"{CASES[case]}, {dtype}",
               turns(timed, work, BACKENDS, rounds), peaks, units,
               "tokens/s")
        del work


def memory_table():
    print(f"\n### peak memory, {CASES['gemma2']}, float32\n")
    print("| backend | peak growth (MiB) | time (s) | attention (s) |\n"
          "|---|---|---|---|")
    peaks = {}
    for b, r in child_runs("gemma2", "float32").items():
        if "error" in r:
            print(f"| {b} | refused: {r['error'][:90]} | | |")
            continue
        peaks[b] = r["peak"]
        print(f"| {b} | {r['peak']:.0f} | {r['seconds']:.1f} | "
              f"{r['attention']:.1f} |", flush=True)
    if "eager" in peaks and "cattn" in peaks:
        print(f"\ncattn/eager peak growth: "
              f"{peaks['cattn'] / peaks['eager']:.3f}")
        DOCS_ROWS.append((
            "peak memory (MiB), Gemma 2-style prefill 8192, float32",
            *(f"{peaks[b]:.0f}" if b in peaks else "refused (softcap)"
              for b in BACKENDS),
            f"eager/cattn {peaks['eager'] / peaks['cattn']:.1f}", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--write-docs", action="store_true",
                        help="write docs/_data/transformers_table.rst")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    import torch
    import transformers

    import cattn
    timed = Timed()
    print(f"cattn {cattn.__version__} "
          f"({cattn.show_config(mode='dicts')['simd']['active']}), torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}, {args.rounds} rounds")
    for dtype in args.dtypes.split(","):
        llama_cases(timed, dtype, args.rounds)
    if not args.skip_memory:
        memory_table()
    if args.write_docs:
        write_docs_table("transformers_table", (
            "case", *(f"{b}: tokens/s (attention s)" for b in BACKENDS),
            "sdpa/cattn, model", "sdpa/cattn, attention"), DOCS_ROWS)


if __name__ == "__main__":
    main()
