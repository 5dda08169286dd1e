"""The Examples sections of every public docstring run as doctests, against
the installed package; and every public name has a numpydoc docstring."""
import doctest
import inspect

import numpy as np
import pytest

import cattn
from cattn import _config, attention, attention_grad, linalg, nn, special

PUBLIC = [n for n in cattn.__all__ if n != "__version__"]


def run_doctests(module, public):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with np.printoptions(legacy=False):
        for test in finder.find(module, globs={"np": np}):
            if set(test.name.split(".")) & set(public):
                runner.run(test)
    assert runner.failures == 0
    assert runner.tries > 0


@pytest.mark.parametrize("module", [special, linalg, attention,
                                    attention_grad, nn, _config])
def test_doctests(module):
    run_doctests(module, PUBLIC)


def test_dask_doctests():
    pytest.importorskip("dask.array")
    from cattn import dask as cattn_dask
    run_doctests(cattn_dask, cattn_dask.__all__)


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


def test_readme_headline_table_matches_the_recorded_sweep():
    """README's benchmark table is the asv sweep the docs plot, not numbers
    typed in by hand (re-export and update both together)."""
    import json
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[1]
    readme, data = root / "README.md", root / "docs/_data/seq_len_sweep.json"
    if not (readme.exists() and data.exists()):
        pytest.skip("needs the source checkout")
    sweep = json.loads(data.read_text())
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1]
            for line in readme.read_text().splitlines()
            if line.startswith("| ")}
    assert [int(c) for c in rows["L = S"]] == sweep["L"]
    for label, impl in (("cattn", "cattn"), ("PyTorch 2.13", "torch"),
                        ("NumPy", "numpy")):
        row = next(v for k, v in rows.items() if k.startswith(label) and
                   "/" not in k)
        assert [float(c) for c in row] == sweep["gflops"][impl], label
    ratio = [round(a / b, 2) for a, b in zip(sweep["gflops"]["cattn"],
                                             sweep["gflops"]["torch"])]
    assert [float(c) for c in rows["cattn / PyTorch"]] == ratio
