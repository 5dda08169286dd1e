"""MultiHeadAttention forward and cached decoding, against PyTorch."""
import numpy as np

import cattn

from .common import QUICK, normal, pick, ratio, torch_or_skip

_B, _L = (2, 64) if QUICK else (8, 512)


class MHAForward:
    params = [pick(["float32", "float64"], ["float32"])]
    param_names = ["dtype"]

    def setup(self, dtype):
        self.mha = cattn.MultiHeadAttention(512, 8, dtype=dtype, rng=0)
        self.x = normal((_B, _L, 512), dtype)

    def time_forward(self, dtype):
        self.mha(self.x)

    def peakmem_forward(self, dtype):
        self.mha(self.x)

class MHAVersusTorch:
    """time(torch.nn.MultiheadAttention) / time(cattn), same weights."""
    params = [pick(["float32", "float64"], ["float32"])]
    param_names = ["dtype"]

    def setup(self, dtype):
        torch = torch_or_skip()
        self.no_grad = torch.no_grad
        self.tm = torch.nn.MultiheadAttention(
            512, 8, batch_first=True, dtype=getattr(torch, dtype)).eval()
        self.mha = cattn.MultiHeadAttention(512, 8, dtype=dtype)
        self.mha.load_state_dict({k: v.numpy()
                                  for k, v in self.tm.state_dict().items()})
        self.x = normal((_B, _L, 512), dtype)
        self.tx = torch.from_numpy(self.x)

    def torch_forward(self):
        with self.no_grad():
            return self.tm(self.tx, self.tx, self.tx, need_weights=False)

    def time_torch_forward(self, dtype):
        self.torch_forward()

    def track_ratio_torch(self, dtype):
        return ratio(self.torch_forward, lambda: self.mha(self.x))

    track_ratio_torch.unit = "time(torch)/time(cattn)"


class MHADecode:
    """64 greedy steps with a KV cache (one token a step)."""
    def setup(self):
        self.mha = cattn.MultiHeadAttention(512, 8, rng=0)
        self.seq = normal((1, 64, 512), np.float32)

    def time_decode_64_steps(self):
        cache = self.mha.new_cache(1, 64)
        for t in range(64):
            self.mha(self.seq[:, t:t + 1], cache=cache)
