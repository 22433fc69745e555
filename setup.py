"""Package discovery for the folder-to-package mapping that pyproject.toml alone cannot express.

``hennframework/`` is the core package and every subpackage under it is found automatically;
``backends/`` is shipped under the namespaced name ``hennframework_backends`` so that nothing
importable has a generic top-level name.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["hennframework", "hennframework.*"]),
        # a data folder, not a module: listed so setuptools ships it without a warning
        "hennframework.data.rt_polarity",
        "hennframework_backends",
    ],
    package_dir={"hennframework": "hennframework", "hennframework_backends": "backends"},
)
