"""Stride arithmetic for the drivers (compiled: _layout.pyx)."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

def batch_offsets(x: NDArray[Any],
                  batch_shape: tuple[int, ...]) -> NDArray[np.int64]: ...
def element_strides(arr: NDArray[Any]) -> tuple[int, ...] | None: ...
def rows_view(a: NDArray[Any], rows: int,
              n: int) -> NDArray[Any] | None: ...
