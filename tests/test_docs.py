"""The Examples sections of every public docstring run as doctests, against
the installed package; and every public name has a numpydoc docstring."""
import doctest
import inspect

import numpy as np
import pytest

import cattn
from cattn import _config, attention, linalg, special

PUBLIC = [n for n in cattn.__all__ if n != "__version__"]


@pytest.mark.parametrize("module", [special, linalg, attention, _config])
def test_doctests(module):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with np.printoptions(legacy=False):
        for test in finder.find(module, globs={"np": np}):
            if test.name.split(".")[-1] in PUBLIC:
                runner.run(test)
    assert runner.failures == 0
    assert runner.tries > 0


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc_sections(name):
    doc = inspect.getdoc(getattr(cattn, name))
    for section in ("Parameters", "Returns", "Raises", "Notes", "Examples"):
        assert f"\n{section}\n" in doc, f"{name} lacks {section}"
