"""The owner/party workflow: operations on ``.henn`` files that the ``henn`` commands run.

* :mod:`~hennframework.workflow.owner` - the key holder: keys, model encryption, decryption of
  models/predictions/losses, key-switching material, refreshes.
* :mod:`~hennframework.workflow.party` - a training party: train, predict and switch keys with
  only public files and its own data.
* :mod:`~hennframework.workflow.exchange` - the file-based refresh exchange between the two.

Training itself is :func:`hennframework.nn.train`, the one loop every model uses (the party runs
it with ``when_exhausted="stop"``: a clean, resumable stop when no refresh is available).

The walkthrough is docs/parties.md.
"""

from hennframework.workflow.exchange import FileRefresher, ServeSummary, request_stop, serve_refresh

__all__ = [
    "FileRefresher",
    "ServeSummary",
    "request_stop",
    "serve_refresh",
]
