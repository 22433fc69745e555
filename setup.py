"""Package discovery for the folder-to-package mapping that pyproject.toml alone cannot express.

``hennframework/`` is the core package and every subpackage under it is found automatically;
``backends/`` is shipped under the namespaced name ``hennframework_backends`` so that nothing
importable has a generic top-level name.

The integer-vector scheme's compiled kernels are an optional extension (built against NumPy's
headers): where no C compiler with 128-bit integers is available the build goes on without them, and the scheme runs its
NumPy paths (the same results, more slowly on small batches; ``henn info`` says which).
"""

from setuptools import Extension, find_packages, setup


def numpy_headers() -> list[str]:
    """NumPy's C headers (the one-vector decryption kernel makes its result with NumPy's C
    API). pyproject.toml's build requirements bring NumPy; a build without it (pip's
    ``--no-build-isolation`` in an environment lacking NumPy) fails to compile the optional
    extension and installs without the kernels, as without a compiler."""
    try:
        import numpy
    except ImportError:
        return []
    return [numpy.get_include()]


setup(
    packages=[
        *find_packages(include=["hennframework", "hennframework.*"]),
        # a data folder, not a module: listed so setuptools ships it without a warning
        "hennframework.data.rt_polarity",
        "hennframework_backends",
    ],
    package_dir={"hennframework": "hennframework", "hennframework_backends": "backends"},
    ext_modules=[
        Extension(
            "hennframework.schemes.integer_vector._kernels",
            ["hennframework/schemes/integer_vector/_kernels.c"],
            # no fused multiply-adds: the noise norms must be the NumPy paths' floats to the bit
            extra_compile_args=["-O3", "-std=c11", "-ffp-contract=off"],
            libraries=["m"],
            include_dirs=numpy_headers(),
            optional=True,  # no compiler: installed without, the NumPy paths run instead
        )
    ],
)
