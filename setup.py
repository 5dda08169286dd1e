"""Build cattn's Cython extensions, with OpenMP when the compiler has it.

Every SIMD variant of every kernel is compiled into the same extension
(`#pragma GCC target` regions), so the default build targets baseline x86-64
and still runs AVX2/AVX-512 code where the CPU has it; no -march=native.

Environment:
  CATTN_DISABLE_OPENMP=1  build serial kernels even if OpenMP is available.
  CATTN_SANITIZE=1        build with AddressSanitizer and UBSan (-O1, frame
                          pointers); run with tools/sanitize.sh.
"""
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join("src", "cattn", "_kernels")
INCLUDE = os.path.join(KERNELS, "include")

OPENMP_TEST = textwrap.dedent("""
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0);
        return omp_get_max_threads() > 0 ? 0 : 1;
    }
""")


def compiler():
    """The C compiler's command, as setuptools will run it."""
    return (os.environ.get("CC") or sysconfig.get_config_var("CC")
            or "cc").split()


def is_clang():
    out = subprocess.run(compiler() + ["--version"], capture_output=True)
    return b"clang" in out.stdout


def openmp_flags():
    """['-fopenmp'] if the C compiler builds and runs an OpenMP program,
    else [] after a loud warning (the kernels then run on one thread)."""
    if os.environ.get("CATTN_DISABLE_OPENMP", "") not in ("", "0"):
        warn("CATTN_DISABLE_OPENMP is set: building serial kernels.")
        return []
    cc = compiler()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_test.c")
        exe = os.path.join(tmp, "omp_test")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        try:
            subprocess.run(cc + ["-fopenmp", src, "-o", exe], check=True,
                           capture_output=True)
            subprocess.run([exe], check=True, capture_output=True)
            return ["-fopenmp"]
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            warn("the C compiler could not build an OpenMP program "
                 f"({exc}; {detail.decode(errors='replace').strip()[:300]}). "
                 "Building SERIAL kernels: cattn will use one thread. "
                 "Install a compiler with OpenMP (gcc) to get parallel kernels.")
            return []


def warn(message):
    bar = "*" * 78
    sys.stderr.write(f"\n{bar}\ncattn build WARNING: {message}\n{bar}\n\n")


def extensions():
    omp = openmp_flags()
    sanitize = os.environ.get("CATTN_SANITIZE", "") not in ("", "0")
    san_flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                 "-fno-sanitize-recover=undefined"] if sanitize else []
    compile_args = [
        "-O1" if sanitize else "-O3",
        # Keep the arithmetic as written: no a*b+c contracted into FMA
        # behind our back (the kernels use FMA explicitly where they mean it).
        "-ffp-contract=off",
        "-fno-strict-aliasing",
        "-Wno-unused-function",
    ] + ([] if is_clang() else [
        # GCC: Cython's firstprivate copies of loop variables trip this
        # falsely (clang has no such warning).
        "-Wno-maybe-uninitialized",
    ]) + omp + san_flags
    # Every kernel header, so a changed header rebuilds the extensions.
    headers = sorted(glob.glob(os.path.join(INCLUDE, "**", "*.h"),
                               recursive=True))
    common = dict(
        # CATTN_NUMPY_INCLUDE: the target's NumPy headers in a cross build
        # (tools/cross_aarch64.sh); the building NumPy's otherwise.
        include_dirs=[os.environ.get("CATTN_NUMPY_INCLUDE")
                      or numpy.get_include(), INCLUDE],
        depends=headers,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=omp + san_flags,
    )
    names = ["_cpu", "_layout", "_frame", "_gemm", "_softmax", "_attention",
             "_attention_grad", "_topk"]
    return [Extension(f"cattn._kernels.{name}",
                      [os.path.join(KERNELS, f"{name}.pyx")], **common)
            for name in names]


def cythonized(exts):
    return cythonize(
        exts,
        compiler_directives={"language_level": 3, "embedsignature": True,
                             # Safe without the GIL (the state audit:
                             # docs/policies.md); a free-threaded Python
                             # keeps the GIL off on import.
                             "freethreading_compatible": True},
        include_path=[os.path.join("src")],
        nthreads=os.cpu_count() or 1,
    )


class BuildExt(build_ext):
    """Cythonize, then compile the extensions side by side: setuptools
    compiles them one at a time unless told (``--parallel``), and a release
    builds a wheel for each CPython version."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self):
        # Cythonized here, not when setup.py is read: an sdist (and every
        # metadata query) then costs no Cython run.  The extensions keep
        # what finalize_options gave them; only their sources become C.
        c_sources = {ext.name: ext.sources
                     for ext in cythonized(self.extensions)}
        for ext in self.extensions:
            ext.sources = c_sources[ext.name]
        super().run()


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
