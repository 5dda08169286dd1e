"""Blocked GEMM driver (compiled: _gemm.pyx); cattn.linalg validates."""
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

_Offsets = NDArray[np.int64]
_Float = NDArray[np.floating[Any]]

def matmul(a: _Float, b: _Float, c: _Float, off_a: _Offsets,
           off_b: _Offsets, off_c: _Offsets, m: int, n: int, k: int,
           rs_a: int, cs_a: int, rs_b: int, cs_b: int, rs_c: int,
           cs_c: int, num_threads: int, pairs: bool = ...) -> None: ...
def kernel_name(dtype: DTypeLike) -> str: ...
def kernel_blocking(dtype: DTypeLike) -> tuple[int, int, int, int, int]: ...
