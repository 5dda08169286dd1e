"""Fused attention driver (compiled: _attention.pyx); cattn.attention
validates and decides the layout."""
import enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

_Offsets = NDArray[np.int64]
_Float = NDArray[np.floating[Any]]

DECODE_MAX_L: int

class MaskKind(enum.IntEnum):
    MASK_NONE = 0
    MASK_BOOL = 1
    MASK_ADD = 2

def attention(q: _Float, k: _Float, v: _Float, mask: NDArray[Any] | None,
              o: _Float, lse: _Float | None, off_q: _Offsets,
              off_k: _Offsets, off_v: _Offsets, off_m: _Offsets,
              off_o: _Offsets, strides: tuple[int, ...],
              sizes: tuple[int, int, int, int], mask_kind: int,
              causal: bool, diag: int, left: int | None, right: int | None,
              scale: float, decode: bool, num_threads: int,
              thr: _Float | None = None,
              thr_idx: NDArray[np.int64] | None = None) -> None: ...
def exp_neg(x: _Float, y: _Float) -> None: ...
