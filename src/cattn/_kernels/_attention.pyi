"""Fused attention driver (compiled: _attention.pyx); cattn._frame
validates the call and hands it over."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._frame import Call

_Float = NDArray[np.floating[Any]]

def attention(call: Call, items: tuple[int, ...], q: _Float,
              k: NDArray[Any], v: NDArray[Any], mask: NDArray[Any] | None,
              o: _Float,
              lse: _Float | None,
              thr: tuple[_Float, NDArray[np.int64]] | None,
              quant: tuple[NDArray[np.float32], NDArray[np.float32], int]
              | None = ...,
              ragged: tuple[NDArray[np.int64], NDArray[np.int64],
                            NDArray[np.int64]] | None = ...,
              paged: tuple[Any, ...] | None = ...,
              schedule: list[dict[str, Any]] | None = ...,
              indices: NDArray[np.int32] | None = ...,
              skip_empty: bool = ...,
              blocks: tuple[NDArray[np.uint8], int, int] | None = ...
              ) -> None: ...
def row_path_rows() -> int: ...
def check_indices(a: NDArray[np.int32], S: int,
                  num_threads: int) -> tuple[int, int, int] | None: ...
def exp_neg(x: _Float, y: _Float, p16: bool = ...) -> None: ...
def softcap_scores(x: _Float, cap: float) -> None: ...
