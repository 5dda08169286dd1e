"""The Examples sections of every public docstring run as doctests, against
the installed package; and every public name has a numpydoc docstring."""
import doctest
import inspect

import numpy as np
import pytest

import cattn
from cattn import _config, attention, linalg, nn, special

PUBLIC = [n for n in cattn.__all__ if n != "__version__"]


@pytest.mark.parametrize("module", [special, linalg, attention, nn, _config])
def test_doctests(module):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with np.printoptions(legacy=False):
        for test in finder.find(module, globs={"np": np}):
            if set(test.name.split(".")) & set(PUBLIC):
                runner.run(test)
    assert runner.failures == 0
    assert runner.tries > 0


@pytest.mark.parametrize("name", PUBLIC)
def test_numpydoc_sections(name):
    obj = getattr(cattn, name)
    sections = ("Parameters", "Notes", "Examples") if inspect.isclass(obj) \
        else ("Parameters", "Returns", "Raises", "Notes", "Examples")
    doc = inspect.getdoc(obj)
    for section in sections:
        assert f"\n{section}\n" in doc, f"{name} lacks {section}"
    if inspect.isclass(obj):  # and every public method
        for attr, member in vars(obj).items():
            if callable(member) and not attr.startswith("_"):
                mdoc = inspect.getdoc(member)
                for section in ("Returns", "Raises", "Notes", "Examples"):
                    assert f"\n{section}\n" in mdoc, f"{name}.{attr} lacks {section}"
