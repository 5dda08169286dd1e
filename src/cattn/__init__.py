"""cattn: fast, exact attention kernels for NumPy on multicore CPUs.

Public API
----------
softmax, log_softmax, logsumexp
    Numerically stable reductions along any axis.
matmul
    ``numpy.matmul`` on a BLIS-style blocked GEMM.
scaled_dot_product_attention, self_attention, attention_weights
    Fused attention (tiled online softmax) and its weights.
varlen_attention
    Sequences of different lengths packed end to end (cu_seqlens).
paged_attention
    New tokens over a paged KV cache (block table, fixed-size pages).
hard_attention
    The hard form: each query takes its best key's value (top_k= on
    scaled_dot_product_attention keeps the k best).
scaled_dot_product_attention_grad
    Its backward: gradients from the saved output and lse.
MultiHeadAttention
    The layer with projections, masks, caches and torch-compatible weights.
quantize, QuantizedArray
    int8 blocks along the last axis (q8_0): an int8 KV cache the attention
    kernel reads in place.
show_config
    Build and run-time facts: OpenMP, SIMD level, threads.
"""
from ._version import __version__
from ._config import show_config
from .linalg import matmul
from .special import log_softmax, logsumexp, softmax
from .attention import (attention_weights, hard_attention,
                        paged_attention, scaled_dot_product_attention,
                        self_attention, varlen_attention)
from .attention_grad import scaled_dot_product_attention_grad
from ._caches import KVCache, PagedKVCache, ProjectedMemory
from .nn import MultiHeadAttention
from .quant import QuantizedArray, quantize

__all__ = ["__version__", "KVCache", "MultiHeadAttention", "PagedKVCache",
           "ProjectedMemory",
           "QuantizedArray", "attention_weights", "hard_attention", "log_softmax", "logsumexp",
           "matmul", "scaled_dot_product_attention",
           "quantize", "scaled_dot_product_attention_grad", "self_attention",
           "paged_attention", "show_config", "softmax", "varlen_attention"]
