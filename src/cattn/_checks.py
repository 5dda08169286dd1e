"""The thin validation layer every public function goes through.

Rules (the same for every function; each bad input the suite knows is a
row of tests/bad_inputs.py, run by tests/test_reliability.py):

* Inputs are array-likes.  float32 and float64 are computed as they are;
  the 16-bit storage dtypes float16 and ml_dtypes.bfloat16 are computed in
  float32 and rounded back once (where a function takes them).  Any other
  dtype (ints, bools, complex, object) raises TypeError naming the
  argument, its dtype and the supported ones.  Nothing is cast silently.
* Mixed inputs follow one promotion rule, NumPy's: the result dtype holds
  every input exactly (float16 + float32 -> float32, anything + float64 ->
  float64), and float16 + bfloat16, which NumPy cannot promote, give
  float32.  The narrower operands are converted.
* Shape errors raise ValueError naming the argument, the shapes and the
  expected signature.
* Non-contiguous, Fortran-ordered, negative-stride and read-only inputs are
  accepted as they are; a copy is made only when a kernel cannot walk the
  strides (a stride that is not a multiple of the item size, or data not
  aligned to it).
* ``out=`` must be an ndarray of exactly the result's dtype (or, for a
  16-bit result, float32: the unrounded answer) (TypeError) and shape, and
  writeable (ValueError).  If it overlaps an input the result is
  computed into a temporary first, as NumPy does, so the answer is the same
  as without overlap.
* ``num_threads`` is None or an int >= 1; a non-integer raises TypeError
  and an int < 1 ValueError.  None is OpenMP's default (``OMP_NUM_THREADS``
  or threadpoolctl's limit, else one per core) shared with the cattn calls
  running in other Python threads at that moment (``_cpu.default_threads``):
  K concurrent callers get about C/K threads each, never K·C in all.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._kernels import _cpu, _layout, _softmax
from ._typing import FloatArray

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
FLOAT32 = np.dtype(np.float32)


def is_storage16(dtype: np.dtype[Any]) -> bool:
    """float16, or ml_dtypes.bfloat16 recognised by its dtype (ml_dtypes is
    never imported here): the 16-bit storage dtypes, computed in float32."""
    # itemsize first: float32/float64 (the common case) answer without a
    # dtype comparison (~0.2 us each, paid several times per layer call).
    return dtype.itemsize == 2 and (dtype.char == "e"
                                    or dtype.name == "bfloat16")


def check_dtype(dtype: np.dtype[Any], name: str, func: str,
                storage: bool = False) -> None:
    """TypeError naming `func` and `name` unless `dtype` is float32 or
    float64 (or, with `storage`, a 16-bit storage dtype).  On the dtype
    alone, so Dask arrays are checked without computing them."""
    if dtype in SUPPORTED_DTYPES or (storage and is_storage16(dtype)):
        return
    want = ("float32, float64, float16 or bfloat16" if storage
            else "float32 or float64")
    raise TypeError(f"{func}: {name} has dtype {dtype}; expected {want} "
                    f"(convert explicitly, e.g. {name}.astype(np.float32))")


def as_storage_array(x: ArrayLike, name: str, func: str) -> NDArray[Any]:
    """`x` as an ndarray of float32, float64, float16 or bfloat16, else
    TypeError (the functions that take 16-bit storage)."""
    arr = np.asarray(x)
    if arr.dtype not in SUPPORTED_DTYPES:       # as as_float_array
        check_dtype(arr.dtype, name, func, storage=True)
    return arr


def as_float_array(x: ArrayLike, name: str, func: str,
                   storage: bool = False) -> FloatArray:
    """`x` as an ndarray of float32 or float64 (with `storage`, also a
    16-bit storage dtype), else TypeError."""
    arr = np.asarray(x)
    if arr.dtype not in SUPPORTED_DTYPES:       # per call: no extra frame
        check_dtype(arr.dtype, name, func, storage)  # when the dtype is fine
    return arr


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype a kernel computes `dtype` in: float32 for 16-bit storage."""
    return FLOAT32 if is_storage16(dtype) else dtype


def narrow(x: NDArray[Any], dtype: np.dtype[Any],
           num_threads: int = 1) -> NDArray[Any]:
    """A C-contiguous float32 `x` rounded to the 16-bit `dtype` with the
    kernels' conversion (nearest even; inf, NaN, subnormals kept)."""
    out = np.empty(x.shape, dtype=dtype)
    _softmax.convert(x.reshape(-1), out.reshape(-1), num_threads)
    return out


def same_dtype(arrays: Sequence[Any]) -> bool:
    """All of `arrays` share the first one's dtype (a plain loop: it runs
    on every call)."""
    dt = arrays[0].dtype
    for a in arrays:
        # Built-in dtypes are singletons: `is` settles the common case
        # without NumPy's dtype comparison (~0.1 us each).
        if a.dtype is not dt and a.dtype != dt:
            return False
    return True


def common_dtype(arrays: Sequence[Any]) -> np.dtype[Any]:
    """The promotion rule of the module docstring: the arrays' dtype if
    they share one, else the narrowest that holds them all exactly (on
    their dtypes alone: NumPy or Dask arrays)."""
    first: np.dtype[Any] = arrays[0].dtype
    if same_dtype(arrays):
        return first
    dtypes = {a.dtype for a in arrays}
    if np.dtype(np.float64) in dtypes:
        return np.dtype(np.float64)
    if len(dtypes) == 1:
        return first
    return FLOAT32       # float32 with 16-bit, or float16 with bfloat16


def resolve_threads(num_threads: object, func: str) -> int:
    """The thread count a kernel should use for `num_threads`."""
    if num_threads is None:
        return _cpu.default_threads()
    if isinstance(num_threads, (bool, np.bool_)):
        raise TypeError(f"{func}: num_threads must be None or an int >= 1, "
                        f"got {num_threads!r}")
    try:
        n = operator.index(num_threads)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{func}: num_threads must be None or an int >= 1, "
                        f"got {num_threads!r} of type "
                        f"{type(num_threads).__name__}") from None
    if n < 1:
        raise ValueError(f"{func}: num_threads must be None or an int >= 1, "
                         f"got {n}")
    return n


def check_out(out: object, shape: Sequence[int], dtype: DTypeLike, func: str,
              inputs: Sequence[NDArray[Any]] = ()) -> bool:
    """Validate ``out=`` for a result of `shape` and `dtype`.

    Returns True when `out` overlaps one of `inputs` in memory, in which case
    the caller computes into a temporary and copies.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{func}: out must be a numpy.ndarray, got "
                        f"{type(out).__name__}")
    if out.dtype != dtype and not (is_storage16(np.dtype(dtype))
                                   and out.dtype == FLOAT32):
        wider = " (or float32)" if is_storage16(np.dtype(dtype)) else ""
        raise TypeError(f"{func}: out has dtype {out.dtype}; the result has "
                        f"dtype {np.dtype(dtype)}{wider}")
    if out.shape != tuple(shape):
        raise ValueError(f"{func}: out has shape {out.shape}; expected "
                         f"{tuple(shape)}")
    if not out.flags.writeable:
        raise ValueError(f"{func}: out is read-only")
    return any(np.may_share_memory(out, x) for x in inputs)


# Strides of an array in elements, or None if the kernels cannot walk it in
# place (a stride that is not a whole number of elements, or data not
# aligned to its item size) and the caller must copy.  Compiled: it runs
# several times per call.
element_strides = _layout.element_strides
