"""The attention frame, kernel side (compiled: _frame.pyx): the mask kinds
the drivers use, in the order (none, bool, additive)."""

MASK_KINDS: tuple[int, int, int]

class Operands:
    """The operands of one kernel call (built and filled from Cython)."""
def use_tile_classes(on: bool) -> bool: ...
