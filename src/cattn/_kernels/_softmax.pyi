"""Row softmax / logsumexp drivers (compiled: _softmax.pyx)."""
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

_Float = NDArray[np.floating[Any]]

SOFTMAX: int
LOG_SOFTMAX: int

def map_rows(op: int, x: _Float, y: _Float, num_threads: int) -> None: ...
def logsumexp_rows(x: _Float, y: _Float, num_threads: int) -> None: ...
def exp(x: _Float, y: _Float) -> None: ...
def kernel_name(dtype: DTypeLike) -> str: ...
