"""cattn: fast, exact attention kernels for NumPy on multicore CPUs.

Public API
----------
softmax, log_softmax, logsumexp
    Numerically stable reductions along any axis.
matmul
    ``numpy.matmul`` on a BLIS-style blocked GEMM.
show_config
    Build and run-time facts: OpenMP, SIMD level, threads.
"""
from ._version import __version__
from ._config import show_config
from .linalg import matmul
from .special import log_softmax, logsumexp, softmax

__all__ = ["__version__", "log_softmax", "logsumexp", "matmul",
           "show_config", "softmax"]
