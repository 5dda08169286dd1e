"""Fused attention driver (compiled: _attention.pyx); cattn._frame
validates the call and hands it over."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._frame import Call

_Float = NDArray[np.floating[Any]]

def attention(call: Call, items: tuple[int, ...], q: _Float, k: _Float,
              v: _Float, mask: NDArray[Any] | None, o: _Float,
              lse: _Float | None,
              thr: tuple[_Float, NDArray[np.int64]] | None) -> None: ...
def exp_neg(x: _Float, y: _Float) -> None: ...
