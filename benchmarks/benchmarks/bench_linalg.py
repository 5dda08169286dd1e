"""matmul and its NumPy (OpenBLAS) / PyTorch peers."""
import numpy as np

import cattn

from .common import (THREADS, gflops, normal, pick, ratio, threads,
                     to_torch, torch_or_skip)

SIZES = pick([256, 1024, 2048], [256])
DTYPES = pick(["float32", "float64"], ["float32"])
# 16-bit storage (bfloat16 needs ml_dtypes: skipped without it).
LOWP = pick(["bfloat16", "float16"], ["bfloat16"])


class Matmul:
    params = [SIZES, DTYPES, THREADS]
    param_names = ["n", "dtype", "threads"]

    def setup(self, n, dtype, nthreads):
        self.a = normal((n, n), dtype)
        self.b = normal((n, n), dtype)
        self.nt = threads(nthreads)

    def time_matmul(self, n, dtype, nthreads):
        cattn.matmul(self.a, self.b, num_threads=self.nt)

    def track_gflops(self, n, dtype, nthreads):
        return gflops(2.0 * n ** 3,
                      lambda: cattn.matmul(self.a, self.b,
                                           num_threads=self.nt))

    track_gflops.unit = "GFLOP/s"

    def track_ratio_numpy(self, n, dtype, nthreads):
        from threadpoolctl import threadpool_limits

        # The same number of threads on both sides.
        with threadpool_limits(self.nt, user_api="blas"):
            return ratio(lambda: np.matmul(self.a, self.b),
                         lambda: cattn.matmul(self.a, self.b,
                                              num_threads=self.nt))

    track_ratio_numpy.unit = "time(numpy)/time(cattn)"


class MatmulFewRows:
    """A decoding step's projection: x (1, E) @ Wᵀ."""
    params = [pick([512, 2048], [512]), DTYPES]
    param_names = ["E", "dtype"]

    def setup(self, E, dtype):
        self.x = normal((1, E), dtype)
        self.w = normal((3 * E, E), dtype)

    def time_matmul(self, E, dtype):
        cattn.matmul(self.x, self.w.T)

    def track_ratio_numpy(self, E, dtype):
        return ratio(lambda: np.matmul(self.x, self.w.T),
                     lambda: cattn.matmul(self.x, self.w.T))

    track_ratio_numpy.unit = "time(numpy)/time(cattn)"


class PeerNumpyMatmul:
    params = [SIZES, DTYPES]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        self.a = normal((n, n), dtype)
        self.b = normal((n, n), dtype)

    def time_matmul(self, n, dtype):
        np.matmul(self.a, self.b)


class MatmulLowPrecision:
    """16-bit matmul: GFLOP/s and the ratios the low-precision issue sets
    (float32 cattn / 16-bit cattn; torch of the same dtype / cattn)."""
    params = [pick([1024, 2048], [256]), LOWP]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        self.a, self.b = normal((n, n), dtype), normal((n, n), dtype)
        self.a32, self.b32 = normal((n, n), "float32"), normal((n, n),
                                                               "float32")

    def time_matmul(self, n, dtype):
        cattn.matmul(self.a, self.b)

    def track_gflops(self, n, dtype):
        return gflops(2.0 * n ** 3, lambda: cattn.matmul(self.a, self.b))

    track_gflops.unit = "GFLOP/s"

    def track_ratio_float32(self, n, dtype):
        return ratio(lambda: cattn.matmul(self.a32, self.b32),
                     lambda: cattn.matmul(self.a, self.b))

    track_ratio_float32.unit = "time(cattn float32)/time(cattn)"


class MatmulLowPrecisionVersusTorch:
    """time(torch.matmul) / time(cattn.matmul), the same 16-bit operands."""
    params = [pick([1024, 2048], [256]), LOWP]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        torch = torch_or_skip()
        if dtype == "float16" and n > 1024:
            # torch's CPU float16 matmul is ~400x slower than cattn's at
            # n = 1024; at 2048 one round outlasts asv's 60 s timeout.
            raise NotImplementedError("torch float16 matmul: n <= 1024 only")
        self.a, self.b = normal((n, n), dtype), normal((n, n), dtype)
        self.ta, self.tb = to_torch(torch, self.a), to_torch(torch, self.b)
        self.matmul = torch.matmul

    def track_ratio_torch(self, n, dtype):
        return ratio(lambda: self.matmul(self.ta, self.tb),
                     lambda: cattn.matmul(self.a, self.b))

    track_ratio_torch.unit = "time(torch)/time(cattn)"


class PeerTorchMatmul:
    params = [SIZES, DTYPES]
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        torch = torch_or_skip()
        self.matmul = torch.matmul
        self.a = torch.from_numpy(normal((n, n), dtype))
        self.b = torch.from_numpy(normal((n, n), dtype))

    def time_matmul(self, n, dtype):
        self.matmul(self.a, self.b)
