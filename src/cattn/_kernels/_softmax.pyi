"""Row softmax / logsumexp drivers (compiled: _softmax.pyx)."""
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

_Float = NDArray[np.floating[Any]]

SOFTMAX: int
LOG_SOFTMAX: int

# x and y: float32/float64, or 16-bit storage (float16, ml_dtypes.bfloat16,
# which is not an np.floating) with y of x's dtype or float32.
def map_rows(op: int, x: NDArray[Any], y: NDArray[Any],
             num_threads: int) -> None: ...
def logsumexp_rows(x: NDArray[Any], y: NDArray[Any],
                   num_threads: int) -> None: ...
def convert(src: NDArray[Any], dst: NDArray[Any],
            num_threads: int = ...) -> None: ...
def exp(x: _Float, y: _Float) -> None: ...
def team_size(rows: int, n: int, num_threads: int) -> int: ...
def kernel_name(dtype: DTypeLike) -> str: ...
