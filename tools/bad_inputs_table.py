"""Write docs/bad_inputs.md from tests/test_reliability.py::BAD_INPUTS.

    PYTHONPATH=tests python tools/bad_inputs_table.py

The table lists each bad call, the exception it raises and the words the
message must contain; tests/test_reliability.py checks the page is current.
"""
import inspect
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from test_reliability import BAD_INPUTS  # noqa: E402


def rows():
    for call, exc, fragment in BAD_INPUTS:
        line = inspect.getsource(call).strip().rstrip(",").rstrip(")")
        src = line[line.index("lambda:") + len("lambda:"):]
        src = src.rsplit(",", 2)[0].strip()       # drop ", EXC, fragment"
        yield f"| `{src}` | `{exc.__name__}` | {fragment} |"


def render():
    head = ("# Bad inputs and what they raise\n\n"
            "Generated from `tests/test_reliability.py::BAD_INPUTS` by "
            "`tools/bad_inputs_table.py`; the test suite runs every row.\n"
            "`x2` is a (2, 3) float64 array, `q4` a (1, 2, 3, 4) float64 "
            "array.\n\n| call | raises | message contains |\n|---|---|---|\n")
    return head + "\n".join(rows()) + "\n"


if __name__ == "__main__":
    with open(os.path.join(HERE, "..", "docs", "bad_inputs.md"), "w") as f:
        f.write(render())
