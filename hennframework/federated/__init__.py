"""Federated training of an encrypted model on Flower (``pip install "hennframework[federated]"``).

The model owner runs the ServerApp (keys, encryption, encrypted FedAvg, refreshes, evaluation),
each party the ClientApp (public key, its own reviews, local steps). See docs/federated.md.
"""

from hennframework.federated.aggregation import fedavg, fedavg_weights

__all__ = ["fedavg", "fedavg_weights"]
