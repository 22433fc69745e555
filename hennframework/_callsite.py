"""Where a warning should point: the first stack frame outside hennframework.

``warnings.warn(..., stacklevel=N)`` with a fixed ``N`` is right for one call path only: the
insecure-parameters warning raised in a scheme's constructor must point at the user's line
whether they called the constructor, :func:`hennframework.get_scheme`, or a scikit-learn
estimator's ``fit``. (Python 3.12's ``skip_file_prefixes`` does this, but 3.11 is supported.)
"""

from __future__ import annotations

import os
import sys

__all__ = ["user_stacklevel"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by the caller point outside the package.

    Call it as ``warnings.warn(message, category, stacklevel=user_stacklevel())``: level 1 is
    the function calling ``warnings.warn``; each frame inside hennframework adds one.
    """
    frame = sys._getframe(1)  # the function that warns (stacklevel 1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        next_frame = frame.f_back
        if next_frame is None:
            break
        frame = next_frame
        level += 1
    return level
