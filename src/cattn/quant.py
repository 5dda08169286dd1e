"""int8 quantized arrays: the storage of an int8 KV cache.

:func:`quantize` and :class:`QuantizedArray` are the public side; the
attention kernel reads the quantized form directly (``_kernels/include/
convert/read_q8.tmpl.h``), dequantizing block by block as it packs or
streams keys and values, so no float copy of K or V is ever made.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _checks
from ._typing import ArrayLike

__all__ = ["QuantizedArray", "quantize"]

_FUNC = "quantize"


class QuantizedArray:
    """An int8 array with one float32 scale per block of the last axis.

    The form llama.cpp calls q8_0: ``x ≈ values * scale`` per block of
    `block_size` consecutive elements along the last axis, symmetric
    (``scale = max|x_block| / 127``, values in [-127, 127]).  Made by
    :func:`quantize`; :func:`cattn.scaled_dot_product_attention` takes it
    as `key` and `value`.

    Parameters
    ----------
    values : ndarray of int8, shape (..., n)
        The quantized values, in [-127, 127].
    scales : ndarray of float32, shape (..., n // block_size)
        One scale per block: element i of a row stands for
        ``values[i] * scales[i // block_size]``.
    block_size : int
        Elements per block; the three must fit each other (ValueError).
        :func:`quantize` makes them.

    Attributes
    ----------
    values : ndarray of int8, shape (..., n)
    scales : ndarray of float32, shape (..., n // block_size)
    block_size : int
    shape : tuple of int
        The shape of the array it stands for (``values.shape``).

    See Also
    --------
    quantize : Makes one.
    dequantize : Back to float32.

    Notes
    -----
    Indexing (``qa[0]``, ``qa[:, :, :10]``, ``qa[..., None, :, :]``)
    applies to the leading axes and returns a view; the last axis is the
    block axis and cannot be indexed.  Memory: 1 byte per element plus 4
    per block (1.125 bytes per element with blocks of 32, against 4 for
    float32 and 2 for 16-bit).

    Examples
    --------
    >>> import numpy as np, cattn
    >>> qa = cattn.quantize(np.linspace(-1, 1, 64, dtype=np.float32))
    >>> qa.shape, qa.values.dtype, qa.scales.shape
    ((64,), dtype('int8'), (2,))
    """

    values: NDArray[np.int8]
    scales: NDArray[np.float32]
    block_size: int

    def __init__(self, values: NDArray[np.int8], scales: NDArray[np.float32],
                 block_size: int) -> None:
        if (values.dtype != np.int8 or scales.dtype != np.float32
                or values.ndim < 1 or values.ndim != scales.ndim
                or values.shape[:-1] != scales.shape[:-1]
                or scales.shape[-1] * block_size != values.shape[-1]):
            raise ValueError(
                f"QuantizedArray: values {values.dtype} {values.shape} and "
                f"scales {scales.dtype} {scales.shape} do not make blocks of "
                f"{block_size} (use cattn.quantize)")
        self.values, self.scales, self.block_size = values, scales, block_size

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the array it stands for.

        The values' shape; the scales have ``shape[-1] // block_size``
        along the last axis.

        See Also
        --------
        dequantize : An array of this shape.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> cattn.quantize(np.zeros((3, 64))).shape
        (3, 64)
        """
        return tuple(self.values.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions.

        As the values' (the scales have as many).

        See Also
        --------
        shape : Their sizes.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> cattn.quantize(np.zeros((2, 3, 64))).ndim
        3
        """
        return int(self.values.ndim)

    @property
    def nbytes(self) -> int:
        """Bytes of the values and scales.

        One byte per element plus four per block.

        See Also
        --------
        quantize : Sets the block size.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> cattn.quantize(np.zeros((4, 64)), block_size=32).nbytes
        288
        """
        return int(self.values.nbytes + self.scales.nbytes)

    def __repr__(self) -> str:
        return (f"QuantizedArray(shape={self.shape}, "
                f"block_size={self.block_size})")

    def __getitem__(self, key: Any) -> QuantizedArray:
        values, scales = self.values[key], self.scales[key]
        if (values.ndim != scales.ndim or values.ndim < 1
                or values.shape[-1] != self.values.shape[-1]
                or scales.shape[-1] != self.scales.shape[-1]):
            raise IndexError(f"QuantizedArray: index {key!r} reaches the "
                             f"block axis (the last); only leading axes can "
                             f"be indexed")
        return QuantizedArray(values, scales, self.block_size)

    def dequantize(self) -> NDArray[np.float32]:
        """The float32 array it stands for.

        A new array: the attention kernel never needs one, this is for
        inspection and for the operations that take float keys (top-k,
        the gradient).

        Returns
        -------
        ndarray of float32
            ``values * scale`` per block, a new array of `shape`.

        Raises
        ------
        MemoryError
            If the float32 array does not fit in memory.

        See Also
        --------
        quantize : The inverse, up to half a step per element.

        Notes
        -----
        One float32 rounding per element, exactly as the attention kernel
        dequantizes the blocks it packs; the kernel never makes this array.

        Examples
        --------
        >>> import numpy as np, cattn
        >>> x = np.array([[0.5, -1.0, 0.25, 2.0]], np.float32)
        >>> cattn.quantize(x, block_size=2).dequantize().round(4)
        array([[ 0.5039, -1.    ,  0.252 ,  2.    ]], dtype=float32)
        """
        v = self.values.astype(np.float32)
        blocks = v.reshape(v.shape[:-1] + (v.shape[-1] // self.block_size,
                                           self.block_size))
        out = blocks * self.scales[..., np.newaxis]
        return out.reshape(self.values.shape)


def quantize(x: ArrayLike, block_size: int = 32) -> QuantizedArray:
    """Quantize `x` to int8 blocks along its last axis (q8_0).

    Symmetric blocks of `block_size` elements with one float32 scale each:
    about a quarter of float32's bytes, for keys and values that
    :func:`scaled_dot_product_attention` reads in place.

    Parameters
    ----------
    x : array_like of float32, float64, float16 or bfloat16, shape (..., n)
        Finite values.
    block_size : int, optional
        Elements per scale, along the last axis; must divide n.

    Returns
    -------
    QuantizedArray
        ``values = rint(x / scale)`` (ties to even) in [-127, 127] with
        ``scale = max|x_block| / 127`` in float32 per block (a zero block
        has scale 0 and values 0).

    Raises
    ------
    TypeError
        If `x` is not float, or `block_size` is not an int.
    ValueError
        If `x` is 0-d or holds inf or NaN, or `block_size` < 1 or does not
        divide the last dimension.

    See Also
    --------
    QuantizedArray.dequantize : The values it stands for.
    scaled_dot_product_attention : Takes quantized key and value.

    Notes
    -----
    Error model: each element of ``dequantize()`` is within
    ``scale / 2`` (half a step, ``max|x_block| / 254``) of x, plus float32
    rounding (a relative 2**-23 of the block's largest value), so a dot
    product with a query q of a block changes by at most
    ``sum|q| · max|x_block| / 254`` -- about 0.4 % of the block's largest
    value per element, independent of the other blocks.

    Examples
    --------
    >>> import numpy as np, cattn
    >>> x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    >>> qa = cattn.quantize(x)
    >>> step = np.repeat(qa.scales, 32, axis=-1)
    >>> bool(np.all(np.abs(qa.dequantize() - x) <= step / 2 * (1 + 1e-6)))
    True
    """
    arr = _checks.as_float_array(x, "x", _FUNC, storage=True)
    if isinstance(block_size, (bool, np.bool_)) or not isinstance(
            block_size, numbers.Integral):
        raise TypeError(f"{_FUNC}: block_size must be an int >= 1, got "
                        f"{block_size!r}")
    bs = int(block_size)
    if arr.ndim == 0:
        raise ValueError(f"{_FUNC}: x is 0-d; expected at least 1 dimension")
    n = arr.shape[-1]
    if bs < 1 or n % bs:
        raise ValueError(f"{_FUNC}: block_size must be an int >= 1 dividing "
                         f"the last dimension {n} of x, got {bs}")
    xf = arr.astype(np.float32)
    if not np.isfinite(xf).all():
        raise ValueError(f"{_FUNC}: x holds inf or NaN, which int8 blocks "
                         "cannot represent")
    blocks = xf.reshape(xf.shape[:-1] + (n // bs, bs))
    scales = (np.abs(blocks).max(axis=-1, initial=0.0)
              / np.float32(127)).astype(np.float32)
    safe = np.where(scales == 0, np.float32(1), scales)[..., np.newaxis]
    values = np.clip(np.rint(blocks / safe), -127, 127).astype(np.int8)
    return QuantizedArray(np.ascontiguousarray(values.reshape(xf.shape)),
                          np.ascontiguousarray(scales), bs)
