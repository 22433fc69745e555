"""The owner/party workflow: operations on ``.henn`` files that the ``henn`` commands run.

* :mod:`~hennframework.workflow.owner` - the key holder: keys, model encryption, decryption of
  models/predictions/losses, key-switching material, refreshes.
* :mod:`~hennframework.workflow.party` - a training party: train, predict and switch keys with
  only public files and its own data.
* :mod:`~hennframework.workflow.exchange` - the file-based refresh exchange between the two.
* :mod:`~hennframework.workflow.training` - the party's training loop (refresh or clean stop).

The walkthrough is docs/parties.md.
"""

from hennframework.workflow.exchange import FileRefresher, ServeSummary, request_stop, serve_refresh
from hennframework.workflow.training import TrainOutcome, train_bundle

__all__ = [
    "FileRefresher",
    "ServeSummary",
    "TrainOutcome",
    "request_stop",
    "serve_refresh",
    "train_bundle",
]
