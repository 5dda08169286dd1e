"""cattn as the attention backend of a Hugging Face transformers model,
against transformers' own ``sdpa`` and ``eager`` backends on the same
weights (random, from a config: nothing is downloaded).

The harness is shared with ``benchmarks/compare_transformers.py`` (the
full table): one model whose attention implementation is a *timed
dispatcher* -- a registered function that calls the chosen backend and
adds up the time spent inside it -- so the three backends take turns on one
set of weights in one process, and "time inside attention" is measured
the same way for each.  Skipped (NotImplementedError) without torch and
transformers.
"""
import time

from .common import QUICK, torch_or_skip

BACKENDS = ("eager", "sdpa", "cattn")

# A Llama-style model of 110M parameters (12 layers of width 768, 12 heads
# of 64, MLP 2048, a 32000-token vocabulary tied to the embedding).  Full
# multi-head attention: at 8192 cached tokens the cache (604 MB in
# float32) outweighs the weights (438 MB), as the decode case intends.
LLAMA_100M = dict(hidden_size=768, intermediate_size=2048,
                  num_hidden_layers=12, num_attention_heads=12,
                  num_key_value_heads=12, vocab_size=32000,
                  tie_word_embeddings=True, max_position_embeddings=16384)
# Quick mode (CI): the same shape of model, a tenth of the work.
LLAMA_QUICK = dict(LLAMA_100M, hidden_size=256, intermediate_size=512,
                   num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=4, vocab_size=1000)


class Timed:
    """The timed dispatcher: registered once as ``attn_implementation=
    "timed"``; ``backend`` chooses eager, sdpa or cattn (each with the mask
    function transformers gives it) and ``seconds`` adds up the time spent
    inside the attention calls."""

    def __init__(self):
        torch_or_skip()
        try:
            import transformers
        except ImportError:
            raise NotImplementedError(
                "transformers is not installed") from None
        from transformers.integrations.sdpa_attention import (
            sdpa_attention_forward)
        from transformers.masking_utils import (AttentionMaskInterface,
                                                eager_mask, sdpa_mask)
        from transformers.models.llama.modeling_llama import (
            eager_attention_forward)

        import cattn.integrations.transformers as ct
        self.transformers = transformers
        self.functions = {"eager": eager_attention_forward,
                          "sdpa": sdpa_attention_forward,
                          "cattn": ct.attention_forward}
        masks = {"eager": eager_mask, "sdpa": sdpa_mask, "cattn": sdpa_mask}
        self.backend = "sdpa"
        self.seconds = 0.0

        def attention(*args, **kwargs):
            t0 = time.perf_counter()
            out = self.functions[self.backend](*args, **kwargs)
            self.seconds += time.perf_counter() - t0
            return out

        def mask(*args, **kwargs):
            return masks[self.backend](*args, **kwargs)

        transformers.AttentionInterface.register("timed", attention)
        AttentionMaskInterface.register("timed", mask)

    def model(self, kind="llama", **config):
        """A random-weight causal LM in eval mode, its attention timed."""
        import torch
        torch.manual_seed(0)
        cfg = self.transformers.AutoConfig.for_model(kind, **config)
        return self.transformers.AutoModelForCausalLM.from_config(
            cfg, attn_implementation="timed").eval()

    def filled_cache(self, model, length, extra, static=True):
        """A KV cache holding `length` random tokens per layer, room for
        `extra` more (a StaticCache: written in place, as a server keeps
        it; else transformers' default DynamicCache, which concatenates
        each new token onto a copy of the whole cache)."""
        import torch
        from transformers import DynamicCache, StaticCache
        cfg = model.config
        if static:
            cache = StaticCache(config=cfg, max_cache_len=length + extra)
        else:
            cache = DynamicCache(config=cfg)
        hkv = cfg.num_key_value_heads
        head_dim = (getattr(cfg, "head_dim", None)
                    or cfg.hidden_size // cfg.num_attention_heads)
        g = torch.Generator().manual_seed(1)
        for layer in range(cfg.num_hidden_layers):
            k, v = (torch.randn(1, hkv, length, head_dim, generator=g,
                                dtype=model.dtype) for _ in range(2))
            cache.update(k, v, layer)
        return cache


def prefill(model, ids):
    """One forward over the prompt, logits of its last token only (as
    generate does)."""
    import torch
    with torch.no_grad():
        return model(ids, logits_to_keep=1).logits


def decode(model, cache, ids, tokens):
    """`tokens` greedy tokens after the cached prompt (ids' last token is
    the one not yet in the cache), the cache put back afterwards."""
    import torch
    try:        # the argument's name since transformers 5.2x
        from transformers.generation.utils import ALL_CACHE_NAMES
        name = ALL_CACHE_NAMES[0]
    except ImportError:
        name = "past_key_values"
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=tokens,
                             min_new_tokens=tokens, do_sample=False,
                             **{name: cache})
    cache.crop(-tokens)
    return out


def turns(timed, work, backends, rounds):
    """Per backend, a list of (seconds, attention seconds), one per round,
    the backends in alternating order (A B C, C B A, ...)."""
    out = {b: [] for b in backends}
    for b in backends:                       # warm-up
        timed.backend = b
        work()
    for r in range(rounds):
        for b in (backends if r % 2 == 0 else backends[::-1]):
            timed.backend = b
            timed.seconds = 0.0
            t0 = time.perf_counter()
            work()
            out[b].append((time.perf_counter() - t0, timed.seconds))
    return out


_SCALE = dict(prompt=256, cache=1024, tokens=8) if QUICK else dict(
    prompt=2048, cache=8192, tokens=64)


class TransformersLlama:
    """time(sdpa) / time(cattn) of a Llama-style model (110M parameters;
    a 2-layer one in quick mode), whole model and attention alone:
    prefill of 2048 tokens, and decoding 64 tokens after 8192 cached ones
    (StaticCache).  Measured interleaved in one process."""
    params = [["prefill", "decode"], ["float32", "bfloat16"]]
    param_names = ["case", "dtype"]
    timeout = 600

    def setup(self, case, dtype):
        self.timed = Timed()            # NotImplementedError without torch
        import torch
        self.model = self.timed.model(
            **(LLAMA_QUICK if QUICK else LLAMA_100M)).to(getattr(torch,
                                                                  dtype))
        vocab = self.model.config.vocab_size
        g = torch.Generator().manual_seed(2)
        if case == "prefill":
            ids = torch.randint(0, vocab, (1, _SCALE["prompt"]), generator=g)
            self.work = lambda: prefill(self.model, ids)
        else:
            ids = torch.randint(0, vocab, (1, _SCALE["cache"] + 1),
                                generator=g)
            cache = self.timed.filled_cache(self.model, _SCALE["cache"],
                                            _SCALE["tokens"])
            self.work = lambda: decode(self.model, cache, ids,
                                       _SCALE["tokens"])
        self.results = turns(self.timed, self.work, ("sdpa", "cattn"),
                             1 if QUICK else 3)

    def _ratio(self, which):
        best = {b: min(t[which] for t in ts)
                for b, ts in self.results.items()}
        return best["sdpa"] / best["cattn"]

    def track_ratio_sdpa_model(self, case, dtype):
        return self._ratio(0)

    track_ratio_sdpa_model.unit = "time(sdpa)/time(cattn), whole model"

    def track_ratio_sdpa_attention(self, case, dtype):
        return self._ratio(1)

    track_ratio_sdpa_attention.unit = "time(sdpa)/time(cattn), attention"
