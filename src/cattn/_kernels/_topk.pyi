"""Top-k key selection (compiled: _topk.pyx), the first pass of hard and
top-k attention; cattn.attention validates and decides the layout."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

_Offsets = NDArray[np.int64]
_Float = NDArray[np.floating[Any]]

def select_top_k(q: _Float, k: _Float, mask: NDArray[Any] | None,
                 thr: _Float, idx: NDArray[np.int64], off_q: _Offsets,
                 off_k: _Offsets, off_m: _Offsets, strides: tuple[int, ...],
                 sizes: tuple[int, int, int], mask_kind: int, causal: bool,
                 diag: int, left: int | None, right: int | None,
                 scale: float, topk: int, num_threads: int) -> None: ...
