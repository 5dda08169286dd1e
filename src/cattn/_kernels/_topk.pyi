"""Top-k key selection (compiled: _topk.pyx), the first pass of hard and
top-k attention; cattn._frame validates the call and hands it over."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._frame import Call

_Float = NDArray[np.floating[Any]]

def select_top_k(call: Call, items: tuple[int, ...], q: _Float, k: _Float,
                 mask: NDArray[Any] | None, thr: _Float,
                 idx: NDArray[np.int64],
                 schedule: list[dict[str, Any]] | None = ...) -> None: ...
def scores(call: Call, items: tuple[int, ...], q: _Float, k: _Float,
           mask: NDArray[Any] | None, out: _Float,
           schedule: list[dict[str, Any]] | None = ...) -> None: ...
