"""The attention engines cattn is measured against, behind one interface.

    engine = ENGINES["openvino"](threads=2)   # ImportError: not installed
    run, result = engine.prepare(q, k, v, kw) # Unsupported: can't run it
    run()                                     # the timed call
    out = result()                            # its output, (B, H, L, Ev)

Every engine takes a case as cattn does -- q (B, H, L, E), k and v
(B, Hkv, S, E) NumPy arrays; the keywords ``is_causal``, ``window`` and
``enable_gqa`` -- and runs it the way its own users would write it: its
own layout and its own attention operator, inputs handed over once outside
the timed call, one compiled model or function per case.  What an engine
has no operator for (a sliding window, a dtype) raises `Unsupported` with
the reason, which the tables print: a peer is never timed on a rewritten
problem (a window as a dense mask would compute every score).

`check` compares an engine's output with the float64 reference before any
timing; every engine is pinned to the same thread count as cattn.

- torch: ``torch.nn.functional.scaled_dot_product_attention`` (no_grad).
- OpenVINO: opset 13 ``ScaledDotProductAttention`` compiled for the CPU
  plugin (latency hint, one stream).  Its CPU plugin computes in bf16 by
  default where the CPU has AVX512_BF16 (``INFERENCE_PRECISION_HINT``
  reads bf16 there), which fails a float32 check; the float32 cases ask
  for f32, the bf16 ones for bf16.  GQA as an exported model writes it:
  each key/value head broadcast to its query heads in the graph.
- ONNX Runtime: the standard ``Attention`` operator of opset 23 on 4-D
  inputs (it reads GQA from the head counts).
- JAX: ``jax.nn.dot_product_attention`` under ``jax.jit``, on (B, L, H, E)
  device arrays; threads through ``XLA_FLAGS``, which must be set before
  jax is imported (`xla_flags`).
"""
import importlib.metadata
import os
import sys

import numpy as np

from cattn import _reference

from .common import to_torch

TOLERANCE = {"float64": 1e-10, "float32": 2e-5, "bfloat16": 2e-2,
             "float16": 4e-3}


class Unsupported(Exception):
    """The engine has no way to run this case as asked."""


def check(out, q, k, v, kw):
    """Raise AssertionError unless `out` is the float64 reference's answer
    within the tolerance of the inputs' dtype (relative to max |ref|, at
    least 1).  Returns the error."""
    ref = _reference.scaled_dot_product_attention(
        q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
        **kw)[0]
    err = float(np.abs(np.asarray(out, np.float64) - ref).max()
                / max(1.0, float(np.abs(ref).max())))
    tol = TOLERANCE[q.dtype.name]
    if not err <= tol:
        raise AssertionError(f"error {err:.2e} above the {q.dtype.name} "
                             f"tolerance {tol:.0e}")
    return err


def _options(kw):
    """The case's keywords every engine understands, or Unsupported."""
    extra = set(kw) - {"is_causal", "window", "enable_gqa"}
    if extra:
        raise Unsupported(f"options {sorted(extra)}")
    return bool(kw.get("is_causal")), kw.get("window")


class Engine:
    """What every engine shares: its distribution's version, known without
    importing it."""
    name = ""
    distribution = ""

    @classmethod
    def installed_version(cls):
        """The installed version; ImportError when it is not installed."""
        try:
            return importlib.metadata.version(cls.distribution or cls.name)
        except importlib.metadata.PackageNotFoundError:
            raise ImportError(f"{cls.name} is not installed") from None


class Torch(Engine):
    name = "torch"

    def __init__(self, threads):
        import torch
        torch.set_num_threads(threads)
        self.torch = torch

    def prepare(self, q, k, v, kw):
        causal, window = _options(kw)
        if window is not None:
            raise Unsupported("no sliding window")
        torch = self.torch
        args = [to_torch(torch, x) for x in (q, k, v)]
        sdpa = torch.nn.functional.scaled_dot_product_attention
        gqa = k.shape[1] != q.shape[1]
        box = []

        def run():
            with torch.no_grad():
                box[:] = [sdpa(*args, is_causal=causal, enable_gqa=gqa)]

        def result():
            out = box[0]
            return (out.float() if out.dtype == torch.bfloat16
                    else out).numpy()
        return run, result


class OpenVINO(Engine):
    name = "openvino"
    PRECISION = {"float32": "f32", "float16": "f32", "bfloat16": "bf16"}

    def __init__(self, threads):
        import openvino
        self.ov = openvino
        self.core = openvino.Core()
        self.threads = threads

    def prepare(self, q, k, v, kw):
        causal, window = _options(kw)
        if window is not None:
            raise Unsupported("no sliding window")
        dtype = q.dtype.name
        if dtype == "float64":
            raise Unsupported("no float64 compute")
        ov = self.ov
        ops = ov.opset13
        types = {"float32": ov.Type.f32, "float16": ov.Type.f16,
                 "bfloat16": ov.Type.bf16}
        params = [ops.parameter(list(x.shape), types[dtype])
                  for x in (q, k, v)]
        pq, pk, pv = params
        H, Hkv = q.shape[1], k.shape[1]
        if Hkv != H:   # (B, Hkv, S, E) -> (B, Hkv, g, S, E) -> (B, H, S, E)
            B, _, S, E = k.shape
            pk, pv = (ops.reshape(ops.broadcast(
                ops.unsqueeze(x, 2), [B, Hkv, H // Hkv, S, E]),
                [B, H, S, E], special_zero=False) for x in (pk, pv))
        out = ops.scaled_dot_product_attention(pq, pk, pv, causal=causal)
        model = ov.Model([out], params)
        try:
            compiled = self.core.compile_model(model, "CPU", {
                "INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1,
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_PRECISION_HINT": self.PRECISION[dtype]})
        except RuntimeError as e:  # e.g. bf16 with oneDNN limited to AVX2
            last = str(e).strip().splitlines()[-1]
            raise Unsupported(f"does not compile: {last[:100]}") from None
        request = compiled.create_infer_request()
        for i, x in enumerate((q, k, v)):
            if dtype == "bfloat16":   # no bf16 NumPy type: copy its bits
                t = ov.Tensor(ov.Type.bf16, ov.Shape(list(x.shape)))
                t.data.view(np.uint16)[...] = x.view(np.uint16)
            else:
                t = ov.Tensor(np.ascontiguousarray(x), shared_memory=True)
            request.set_input_tensor(i, t)

        def result():
            data = request.get_output_tensor(0).data
            if dtype == "bfloat16":
                return (data.view(np.uint16).astype(np.uint32)
                        << 16).view(np.float32)
            return np.array(data)
        return request.infer, result


class OnnxRuntime(Engine):
    name = "onnxruntime"

    def __init__(self, threads):
        import onnxruntime
        self.ort = onnxruntime
        self.threads = threads

    def prepare(self, q, k, v, kw):
        causal, window = _options(kw)
        if window is not None:
            raise Unsupported("no sliding window")
        from onnx import TensorProto, helper
        types = {"float64": TensorProto.DOUBLE, "float32": TensorProto.FLOAT,
                 "float16": TensorProto.FLOAT16}
        if q.dtype.name not in types:
            raise Unsupported(f"no {q.dtype.name} kernel on the CPU")
        ty = types[q.dtype.name]
        node = helper.make_node("Attention", ["q", "k", "v"], ["o"],
                                is_causal=int(causal))
        graph = helper.make_graph(
            [node], "attention",
            [helper.make_tensor_value_info(n, ty, x.shape)
             for n, x in zip("qkv", (q, k, v))],
            [helper.make_tensor_value_info("o", ty, None)])
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 23)])
        model.ir_version = 10
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = self.ort.InferenceSession(
            model.SerializeToString(), options,
            providers=["CPUExecutionProvider"])
        feeds = {"q": q, "k": k, "v": v}
        box = []

        def run():
            box[:] = session.run(None, feeds)

        return run, lambda: box[0]


def xla_flags(threads):
    """XLA_FLAGS for `threads` threads and, under ``CATTN_ISA=avx2``, AVX2
    code: set before jax is imported.  XLA's CPU client runs one thread or
    all cores (Eigen's pool takes no size)."""
    flags = []
    if threads == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    elif threads != os.cpu_count():
        raise Unsupported(f"XLA runs 1 or all {os.cpu_count()} threads")
    if os.environ.get("CATTN_ISA") == "avx2":
        flags.append("--xla_cpu_max_isa=AVX2")
    return " ".join(flags)


class Jax(Engine):
    name = "jax"

    def __init__(self, threads):
        flags = xla_flags(threads)
        if "jax" not in sys.modules:
            os.environ["XLA_FLAGS"] = flags
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        self.jax = jax

    def prepare(self, q, k, v, kw):
        causal, window = _options(kw)
        if q.dtype.name == "float16":
            raise Unsupported("no float16 dot_general on the CPU")
        jax = self.jax
        # JAX's layout is (B, L, H, E); the data lives there already.
        args = [jax.device_put(np.ascontiguousarray(x.transpose(0, 2, 1, 3)))
                for x in (q, k, v)]
        fn = jax.jit(lambda a, b, c: jax.nn.dot_product_attention(
            a, b, c, is_causal=causal, local_window_size=window))
        box = []

        def run():
            box[:] = [fn(*args).block_until_ready()]

        def result():
            out = box[0]
            if out.dtype.name == "bfloat16":
                out = out.astype(np.float32)
            return np.asarray(out).transpose(0, 2, 1, 3)
        return run, result


ENGINES = {e.name: e for e in (Torch, OpenVINO, OnnxRuntime, Jax)}
