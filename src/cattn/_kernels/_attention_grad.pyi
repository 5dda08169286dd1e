"""Backward attention driver (compiled: _attention_grad.pyx);
cattn.attention_grad validates and decides the layout."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

_Offsets = NDArray[np.int64]
_Float = NDArray[np.floating[Any]]

def attention_grad(q: _Float, k: _Float, v: _Float, o: _Float, go: _Float,
                   lse: _Float, mask: NDArray[Any] | None, dq: _Float,
                   dk: _Float, dv: _Float, dmask: _Float | None,
                   off_q: _Offsets, off_k: _Offsets, off_v: _Offsets,
                   off_o: _Offsets, off_g: _Offsets, off_m: _Offsets,
                   strides: tuple[int, ...],
                   sizes: tuple[int, int, int, int, int], mask_kind: int,
                   causal: bool, diag: int, left: int | None,
                   right: int | None, scale: float,
                   num_threads: int) -> int: ...
