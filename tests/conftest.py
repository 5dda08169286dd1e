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


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


# Relative tolerances against the float64 references, per dtype.
RTOL = {np.float32: 2e-6, np.float64: 1e-13}
