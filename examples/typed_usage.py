"""A small NumPy program that uses cattn, type-checked with ``mypy --strict``.

The test suite (tests/test_typing.py) runs mypy on this file against the
installed package, and runs it: the signatures in cattn's annotations and
the stubs of its compiled modules must describe what the code really does.
"""
from typing import Any

import numpy as np
from numpy.typing import NDArray

import cattn
from cattn._kernels import _cpu


def encoder_layer(x: NDArray[np.float32], mha: cattn.MultiHeadAttention,
                  pad: NDArray[np.bool_]) -> NDArray[np.floating[Any]]:
    """Self-attention with a padding mask, then a residual connection."""
    y = mha(x, key_padding_mask=pad)
    return x + y


def decode(mha: cattn.MultiHeadAttention, memory: NDArray[np.float32],
           steps: int) -> list[NDArray[np.floating[Any]]]:
    """Greedy-style decoding: causal self-attention on a KV cache, then
    cross-attention on encoder states projected once."""
    cache = mha.new_cache(batch=memory.shape[0], max_len=steps)
    projected = mha.project_memory(memory)
    token = np.zeros((memory.shape[0], 1, mha.embed_dim), np.float32)
    outputs = []
    for _ in range(steps):
        h = mha(token, cache=cache)
        out = mha(h, projected)
        outputs.append(out)
    return outputs


def main() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 16, 8)).astype(np.float32)
    kv = rng.standard_normal((2, 4, 32, 8)).astype(np.float32)

    out = cattn.scaled_dot_product_attention(q, kv, kv, is_causal="bottom_right")
    out2, lse = cattn.scaled_dot_product_attention(q, kv, kv, return_lse=True)
    w = cattn.attention_weights(q, kv, window=(4, None))
    s = cattn.self_attention(kv, is_causal=True, num_threads=1)
    p = cattn.softmax(q, axis=(-2, -1))
    z = cattn.logsumexp(q, axis=-1, keepdims=True)
    m = cattn.matmul(q, np.swapaxes(kv, -1, -2))
    assert out.shape == out2.shape == (2, 4, 16, 8) and lse.shape == (2, 4, 16)
    assert w.shape == m.shape and s.shape == kv.shape and p.shape == q.shape
    assert z.shape == (2, 4, 16, 1)

    mha = cattn.MultiHeadAttention(32, 4, num_kv_heads=2, rng=1)
    x = rng.standard_normal((2, 10, 32)).astype(np.float32)
    pad = np.zeros((2, 10), dtype=bool)
    y, weights = mha(x, need_weights=True, average_attn_weights=False)
    assert encoder_layer(x, mha, pad).shape == y.shape == (2, 10, 32)
    assert weights.shape == (2, 4, 10, 10)
    steps = decode(mha, x, steps=3)
    assert len(steps) == 3 and steps[0].shape == (2, 1, 32)

    state: dict[str, NDArray[np.floating[Any]]] = mha.state_dict()
    mha.load_state_dict(state)
    cfg = cattn.show_config(mode="dicts")
    active: str = cfg["simd"]["active"]
    threads: int = _cpu.max_threads()
    print(f"cattn {cattn.__version__}: {active}, {threads} thread(s), ok")


if __name__ == "__main__":
    main()
