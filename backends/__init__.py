"""Array backends for hennframework, shipped as the namespaced package ``hennframework_backends``.

One module per backend (``numpy_backend``, ``cupy_backend``), each registered under the entry-point
group ``hennframework.backends``. Adding a backend is one class plus one entry point.
"""
