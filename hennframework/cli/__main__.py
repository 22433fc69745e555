"""``python -m hennframework.cli``: the same as the ``henn`` command."""

from hennframework.cli import main

raise SystemExit(main())
