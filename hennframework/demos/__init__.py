"""Runnable demonstrations (``henn demo ...``): Trask's 2017 XOR and sentiment networks."""
