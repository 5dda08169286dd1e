"""Blocked GEMM driver (compiled: _gemm.pyx); cattn.linalg validates."""
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

_Float = NDArray[np.floating[Any]]

def matmul(a: _Float, b: _Float, c: _Float, batch: tuple[int, ...],
           num_threads: int, pairs: bool = ...) -> None: ...
def kernel_name(dtype: DTypeLike) -> str: ...
def kernel_blocking(dtype: DTypeLike) -> tuple[int, int, int, int, int]: ...
