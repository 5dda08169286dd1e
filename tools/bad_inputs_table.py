"""Write docs/bad_inputs.md from tests/bad_inputs.py.

    python tools/bad_inputs_table.py

The table lists each bad call (the source the test suite evaluates), the
exception it raises and the pattern its message must contain;
tests/test_reliability.py runs every row and checks the page is current.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from bad_inputs import ROWS  # noqa: E402

LEGEND = """\
Names: `x2` a (2, 3) and `q4` a (1, 2, 3, 4) float64 array; `q`, `k`, `v`
float32 (2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6); `x` float64 (5, 4); `a`,
`b` float32 (2, 3), (3, 4); `ro`, `ro1`, `ro2` read-only arrays; `gq`,
`gk`, `go`, `glse` a forward's inputs and results; `mha` a
`MultiHeadAttention(8, 2)` and `sd` its `state_dict()`; `x8` float32
(2, 3, 8); `sdpa`, `hard`, `grad` the attention functions.  varlen:
`xq`, `xk`, `xv` float64 (8, 4, 16), (8, 2, 16), (8, 2, 8) packed tokens
and `cu` = [0, 5, 8].  paged: `pq` float32 (2, 4, 1, 32) queries, `kp`,
`vp` float32 pages (8, 2, 4, 32), (8, 2, 4, 24), `table` =
[[0, 1, 2, -1], [3, 4, -1, -1]], `lens` = [10, 5].
"""


def rows():
    for call, exc, message in ROWS:
        pattern = message.replace("|", "\\|")
        yield f"| `{call}` | `{exc.__name__}` | `{pattern}` |"


def render():
    head = ("# Bad inputs and what they raise\n\n"
            "Generated from `tests/bad_inputs.py` by "
            "`tools/bad_inputs_table.py`; the test suite runs every row.\n"
            + LEGEND + "\n| call | raises | message matches |\n"
            "|---|---|---|\n")
    return head + "\n".join(rows()) + "\n"


if __name__ == "__main__":
    with open(os.path.join(HERE, "..", "docs", "bad_inputs.md"), "w") as f:
        f.write(render())
