"""Run-time configuration: SIMD level, threads, and show_config().

The SIMD level is chosen once at import: the best the CPU supports, or a
lower one named by the environment variable ``CATTN_ISA`` (``generic``,
``avx2``, ``avx512`` or ``avx512_bf16`` on x86-64; ``generic``, ``neon`` or
``neon_bf16`` on AArch64; ``auto`` or empty for the best).  A level the CPU
cannot run, or an unknown name, is reported with a RuntimeWarning and the
best level is used.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from typing import Any, Literal, overload

import numpy as np

from ._kernels import _cpu, _gemm, _softmax
from ._version import __version__

ISA_NAMES = _cpu.ISA_NAMES


def supported_isas() -> tuple[str, ...]:
    """Names of the SIMD levels this CPU can run, lowest first."""
    return ISA_NAMES[:_cpu.best_isa() + 1]


def active_isa() -> str:
    """Name of the SIMD level the kernels use now."""
    return ISA_NAMES[_cpu.get_isa()]


def _apply_env_isa(value: str | None) -> None:
    value = (value or "").strip().lower()
    if value in ("", "auto", "best"):
        return
    if value not in ISA_NAMES:
        warnings.warn(f"CATTN_ISA={value!r} is not one of {ISA_NAMES} or "
                      f"'auto'; using {active_isa()!r}", RuntimeWarning,
                      stacklevel=3)
        return
    level = ISA_NAMES.index(value)
    if level > _cpu.best_isa():
        warnings.warn(f"CATTN_ISA={value!r} is not supported by this CPU "
                      f"(best: {ISA_NAMES[_cpu.best_isa()]!r}); using the "
                      "best", RuntimeWarning, stacklevel=3)
        return
    _cpu.set_isa(level)


@contextlib.contextmanager
def _isa(name: str) -> Iterator[None]:
    """Run the block with the kernels of SIMD level `name` (for tests)."""
    previous = _cpu.get_isa()
    _cpu.set_isa(ISA_NAMES.index(name))
    try:
        yield
    finally:
        _cpu.set_isa(previous)


def _openmp_runtimes() -> list[dict[str, Any]] | None:
    """OpenMP/BLAS runtimes loaded in this process, if threadpoolctl is
    installed (an optional dependency)."""
    try:
        import threadpoolctl  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    return [
        {k: info.get(k) for k in ("user_api", "internal_api", "prefix",
                                  "filepath", "version", "num_threads")}
        for info in threadpoolctl.threadpool_info()
    ]


def _config_dict() -> dict[str, Any]:
    omp = _cpu.openmp_version()
    return {
        "cattn": {"version": __version__},
        "openmp": {
            "enabled": omp > 0,
            "version": omp,
            "default_threads": _cpu.max_threads(),
            "library": _cpu.openmp_library(),
        },
        "simd": {
            "compiled": list(ISA_NAMES),
            "supported": list(supported_isas()),
            "active": active_isa(),
            "CATTN_ISA": os.environ.get("CATTN_ISA"),
        },
        "kernels": {
            "matmul_float32": _gemm.kernel_name(np.float32),
            "matmul_float64": _gemm.kernel_name(np.float64),
            "softmax_float32": _softmax.kernel_name(np.float32),
            "softmax_float64": _softmax.kernel_name(np.float64),
        },
        "python": {"version": sys.version.split()[0],
                   "machine": platform.machine()},
        "numpy": {"version": np.__version__},
        "loaded_runtimes": _openmp_runtimes(),
    }


@overload
def show_config(mode: Literal["stdout"] = ...) -> None: ...


@overload
def show_config(mode: Literal["dicts"]) -> dict[str, Any]: ...


def show_config(mode: str = "stdout") -> dict[str, Any] | None:
    """Show how cattn was built and what it runs on this machine.

    Use it in bug reports: it says which kernels ran, with how many threads,
    and which other OpenMP/BLAS runtimes share the process.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, optional
        ``"stdout"`` (default) prints a report; ``"dicts"`` returns it as a
        dict of dicts instead, as :func:`numpy.show_config` does.

    Returns
    -------
    config : dict or None
        The report when ``mode="dicts"``, else None.

    Raises
    ------
    ValueError
        If `mode` is not ``"stdout"`` or ``"dicts"``.

    See Also
    --------
    threadpoolctl.threadpool_info : The runtimes of every library loaded.
    numpy.show_config : NumPy's counterpart.

    Notes
    -----
    The report has the cattn version; whether the kernels were built with
    OpenMP, its specification date, the default thread count (which
    honours ``OMP_NUM_THREADS`` and threadpoolctl limits) and the path of
    the OpenMP runtime the kernels call (in a wheel, the libgomp bundled in
    ``cattn.libs/``); the SIMD levels
    compiled in, those this CPU supports and the one in use (set with the
    environment variable ``CATTN_ISA`` before import); the micro-kernel
    names; the Python and NumPy versions; and, when threadpoolctl is
    installed, every OpenMP and BLAS runtime loaded in the process (NumPy's
    OpenBLAS, PyTorch's libgomp, ...), with cattn's own marked.

    Examples
    --------
    >>> import cattn
    >>> cfg = cattn.show_config(mode="dicts")
    >>> cfg["simd"]["active"] in cfg["simd"]["supported"]
    True
    >>> cfg["openmp"]["default_threads"] >= 1
    True
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"show_config: mode must be 'stdout' or 'dicts', "
                         f"got {mode!r}")
    cfg = _config_dict()
    if mode == "dicts":
        return cfg
    omp = cfg["openmp"]
    simd = cfg["simd"]
    lines = [
        f"cattn {cfg['cattn']['version']}",
        "  OpenMP:          " + (
            f"enabled (spec {omp['version']}), default threads "
            f"{omp['default_threads']}" if omp["enabled"]
            else "DISABLED (serial build: kernels use one thread)"),
        f"  OpenMP library:  {omp['library'] or '-'}",
        f"  SIMD compiled:   {', '.join(simd['compiled'])}",
        f"  SIMD supported:  {', '.join(simd['supported'])}",
        f"  SIMD active:     {simd['active']}"
        + (f" (CATTN_ISA={simd['CATTN_ISA']})" if simd["CATTN_ISA"] else ""),
        "  kernels:         " + ", ".join(
            f"{k}={v}" for k, v in cfg["kernels"].items()),
        f"  Python:          {cfg['python']['version']} "
        f"({cfg['python']['machine']})",
        f"  NumPy:           {cfg['numpy']['version']}",
    ]
    runtimes = cfg["loaded_runtimes"]
    if runtimes is None:
        lines.append("  runtimes:        (install threadpoolctl to list "
                     "the OpenMP/BLAS runtimes loaded)")
    else:
        for rt in runtimes:
            lines.append(
                f"  runtime:         {rt['user_api']}/{rt['internal_api']} "
                f"{rt['version'] or ''} threads={rt['num_threads']} "
                f"{rt['filepath']}"
                + (" (cattn's)" if rt["filepath"] == omp["library"] else ""))
    print("\n".join(lines))
    return None


_apply_env_isa(os.environ.get("CATTN_ISA"))
