"""Attention backward driver (compiled: _attention_grad.pyx);
cattn._frame validates the call, cattn.attention_grad hands it over."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._frame import Call

_Float = NDArray[np.floating[Any]]

def attention_grad(call: Call, kv_items: tuple[int, ...], q: _Float,
                   k: _Float, v: _Float, o: _Float, go: _Float, lse: _Float,
                   mask: NDArray[Any] | None, dq: _Float, dk: _Float,
                   dv: _Float, dmask: _Float | None,
                   schedule_log: list[dict[str, Any]] | None = ...,
                   skip_empty: bool = ...,
                   blocks: tuple[NDArray[np.uint8], int, int] | None = ...
                   ) -> int | None: ...
def sparse_attention_grad(call: Call, kv_items: tuple[int, ...], q: _Float,
                          k: NDArray[Any], v: NDArray[Any], o: _Float,
                          go: _Float, lse: _Float,
                          mask: NDArray[Any] | None, dq: _Float,
                          dk: _Float, dv: _Float, dmask: _Float | None,
                          indices: NDArray[np.int32]) -> None: ...
