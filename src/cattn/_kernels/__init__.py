"""Compiled kernels: Cython drivers (tiling, threads) over C micro-kernels.

Nothing here is public; ``cattn``'s functions validate their inputs and then
call into these modules.  See ``include/`` for the kernel contracts.
"""
