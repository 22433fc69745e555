"""``python -m hennframework.data PATH``: train the unencrypted baseline (see baseline.main)."""

from __future__ import annotations

from hennframework.data.baseline import main

if __name__ == "__main__":
    raise SystemExit(main())
