"""Shared fixtures: every SIMD level in use, seeded generators."""
import numpy as np
import pytest

from cattn import _config


# Every level this CPU runs, up to the one active at import: CATTN_ISA=avx2
# (or generic) caps it, so a whole run behaves as on an older CPU.
ISAS = _config.supported_isas()[:_config.supported_isas().index(
    _config.active_isa()) + 1]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run the test once per SIMD level in use (see ISAS)."""
    with _config._isa(request.param):
        yield request.param


def exact16():
    """The highest SIMD level in use where 16-bit storage is the float32
    kernel bit for bit (all but avx512_bf16 and neon_bf16, whose bf16 pair
    products sum exact products in another order)."""
    return _config._isa([i for i in ISAS if not i.endswith("_bf16")][-1])


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


# The one table of tolerances against the float64 twins, by kind of
# comparison and dtype (test modules import it from here):
#   elementwise  row kernels (softmax family, matmul rows, Dask merges):
#                relative, per element
#   attention    one fused forward: normwise, |got - want| / |want|
#   gradient     the backward (three more products): normwise
#   layer        compositions (MultiHeadAttention, fuzzed shapes and
#                scales): relative, with an absolute floor scaled to |want|
TOL = {
    "elementwise": {np.float32: 2e-6, np.float64: 1e-13},
    "attention": {np.float32: 1e-5, np.float64: 1e-12},
    "gradient": {np.float32: 2e-5, np.float64: 1e-12},
    "layer": {np.float32: 2e-5, np.float64: 1e-12},
}
RTOL = TOL["elementwise"]
