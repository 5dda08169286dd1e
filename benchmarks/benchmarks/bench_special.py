"""softmax and logsumexp, and their SciPy / PyTorch peers."""
import numpy as np

import cattn

from .common import (THREADS, normal, pick, ratio, threads, to_torch,
                     torch_or_skip)

# (1, 1, 8, 16): the per-call cost of a small softmax (decoding calls one
# per token), issue 17's "tiny softmax".
SHAPES = pick([(1, 1, 8, 16), (1024, 1024), (4096, 4096)],
              [(1, 1, 8, 16), (256, 1024)])
# 16-bit storage (issue 18): computed in float32, rounded once.
DTYPES = pick(["float32", "float64", "float16", "bfloat16"],
              ["float32", "float16"])


class Softmax:
    params = [SHAPES, DTYPES, THREADS]
    param_names = ["shape", "dtype", "threads"]

    def setup(self, shape, dtype, nthreads):
        self.x = normal(shape, dtype)
        self.nt = threads(nthreads)

    def time_softmax(self, shape, dtype, nthreads):
        cattn.softmax(self.x, num_threads=self.nt)

    def time_logsumexp(self, shape, dtype, nthreads):
        cattn.logsumexp(self.x, num_threads=self.nt)

    def peakmem_softmax(self, shape, dtype, nthreads):
        cattn.softmax(self.x, num_threads=self.nt)

    def track_ratio_scipy_softmax(self, shape, dtype, nthreads):
        import scipy.special
        return ratio(lambda: scipy.special.softmax(self.x, axis=-1),
                     lambda: cattn.softmax(self.x, num_threads=self.nt))

    track_ratio_scipy_softmax.unit = "time(scipy)/time(cattn)"


class PeerSciPySoftmax:
    params = [SHAPES, DTYPES]
    param_names = ["shape", "dtype"]

    def setup(self, shape, dtype):
        import scipy.special
        self.softmax = scipy.special.softmax
        self.logsumexp = scipy.special.logsumexp
        self.x = normal(shape, dtype)

    def time_softmax(self, shape, dtype):
        self.softmax(self.x, axis=-1)

    def time_logsumexp(self, shape, dtype):
        self.logsumexp(self.x, axis=-1)


class PeerTorchSoftmax:
    params = [SHAPES, DTYPES]
    param_names = ["shape", "dtype"]

    def setup(self, shape, dtype):
        self.torch = torch_or_skip()
        self.np_x = normal(shape, dtype)
        self.x = to_torch(self.torch, self.np_x)

    def time_softmax(self, shape, dtype):
        self.torch.softmax(self.x, dim=-1)

    def track_ratio_torch_softmax(self, shape, dtype):
        x = self.np_x
        return ratio(lambda: self.torch.softmax(self.x, dim=-1),
                     lambda: cattn.softmax(x))

    track_ratio_torch_softmax.unit = "time(torch)/time(cattn)"


class MemoryBaseline:
    def peakmem_reference(self):
        """Empty: the interpreter with cattn imported, for peakmem_*."""
