"""Type information: py.typed, stubs for the compiled modules that match
them, and ``mypy --strict`` on a real program (examples/typed_usage.py)."""
import ast
import inspect
import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

import cattn
from cattn._kernels import (_attention, _attention_grad, _cpu, _frame, _gemm,
                            _layout, _softmax, _topk)

PKG = pathlib.Path(cattn.__file__).parent
EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / \
    "typed_usage.py"
COMPILED = (_attention, _attention_grad, _cpu, _frame, _gemm, _layout,
            _softmax, _topk)


def test_py_typed_ships():
    assert (PKG / "py.typed").is_file()


@pytest.mark.parametrize("module", COMPILED, ids=lambda m: m.__name__)
def test_stub_matches_compiled_module(module):
    """Every public name of the extension is in its stub with the same
    parameters, and the stub declares nothing the extension lacks."""
    stub = pathlib.Path(module.__file__).with_name(
        module.__name__.rsplit(".", 1)[1] + ".pyi")
    tree = ast.parse(stub.read_text())
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            declared[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.ClassDef):
            declared[node.name] = None
        elif isinstance(node, ast.AnnAssign):
            declared[node.target.id] = None
    declared = {k: v for k, v in declared.items() if not k.startswith("_")}
    public = {n for n, v in vars(module).items()
              if not n.startswith("_") and not inspect.ismodule(v)}
    assert set(declared) == public
    for name, params in declared.items():
        if params is not None:
            got = list(inspect.signature(getattr(module, name)).parameters)
            assert got == params, name


def _mypy(path, cache):
    pytest.importorskip("mypy")
    env = dict(os.environ)
    # A source checkout (PYTHONPATH=src) is not on mypy's search path; an
    # installed cattn is found in site-packages as users would find it.
    root = str(PKG.parent)
    if root not in (sysconfig.get_path("purelib"),
                    sysconfig.get_path("platlib")):
        env["MYPYPATH"] = root
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
         "--no-error-summary", str(path)],
        capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mypy_cache")


def test_example_passes_mypy_strict(mypy_cache):
    res = _mypy(EXAMPLE, mypy_cache)
    assert res.returncode == 0, res.stdout + res.stderr


def test_example_runs():
    res = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"cattn {cattn.__version__}")


def test_mypy_rejects_misuse(mypy_cache, tmp_path):
    """The annotations are precise enough to catch mistakes (a stub that
    said Any everywhere would pass the example too)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import numpy as np\n"
        "import cattn\n"
        "x = np.ones((2, 2), np.float32)\n"
        "cattn.softmax(x, axis='last')\n"
        "cattn.scaled_dot_product_attention(x, x, x, is_causal='top')\n"
        "n: int = cattn.matmul(x, x)\n"
        "t: tuple[int, int] = cattn.scaled_dot_product_attention(\n"
        "    x, x, x, return_lse=True)\n"
        "cattn.show_config(mode='json')\n"
        "cattn.MultiHeadAttention(8, 2).new_cache(1, max_len='9')\n")
    res = _mypy(bad, mypy_cache)
    assert res.returncode == 1
    lines = [ln for ln in res.stdout.splitlines() if ": error:" in ln]
    got = sorted({int(ln.split(":")[1]) for ln in lines})
    assert got == [4, 5, 6, 7, 9, 10], res.stdout
