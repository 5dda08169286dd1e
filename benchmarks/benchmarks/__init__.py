"""cattn's asv benchmark suite.

Results depend on the CPU's SIMD level and the thread count, so both are
printed when asv discovers the suite (as numpy's suite prints its CPU
features).  CATTN_BENCH_QUICK=1 shrinks every parameter list to its
smallest case, for CI's single pass over the suite (see common.py).
"""
import sys

try:
    import cattn

    _cfg = cattn.show_config(mode="dicts")
    if "discover" in sys.argv:
        print(f"cattn {_cfg['cattn']['version']}: SIMD {_cfg['simd']['active']} "
              f"(supported: {', '.join(_cfg['simd']['supported'])}), "
              f"threads {_cfg['openmp']['default_threads']}", file=sys.stderr)
except ImportError:  # discovery in an environment without cattn
    pass
