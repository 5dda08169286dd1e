"""Shared fixtures: every SIMD level the CPU runs, seeded generators."""
import numpy as np
import pytest

from cattn import _config


@pytest.fixture(params=_config.supported_isas())
def isa(request):
    """Run the test once per SIMD level this machine supports."""
    with _config._isa(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


# Relative tolerances against the float64 references, per dtype.
RTOL = {np.float32: 2e-6, np.float64: 1e-13}
