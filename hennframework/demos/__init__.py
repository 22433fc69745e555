"""Runnable demonstrations (``henn demo ...``): the seed's XOR network and sentiment network."""
