"""Type aliases shared by the public signatures (for type checkers only;
nothing here is checked at run time: the validation layer is _checks)."""
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["ArrayLike", "Axis", "Causal", "DTypeLike", "FloatArray",
           "Precision", "Threads", "Window"]

# The kernels compute in float32 or float64 and return that dtype.
FloatArray: TypeAlias = NDArray[np.floating[Any]]
# None (every axis), one axis, or several.
Axis: TypeAlias = int | tuple[int, ...] | None
# False, or the diagonal the causal mask is aligned to (True = "top_left").
Causal: TypeAlias = bool | Literal["top_left", "bottom_right"]
# (left, right) keys visible around the diagonal; None on a side = no limit.
Window: TypeAlias = tuple[int | None, int | None] | None
# None = the OpenMP default (OMP_NUM_THREADS, threadpoolctl, cores).
Threads: TypeAlias = int | None
# JAX's names; None is "default" (bf16 products on bf16 hardware).
Precision: TypeAlias = Literal["default", "highest"] | None
