"""A sequential model that trains and predicts with plain or encrypted weights.

``model.encrypt(keys)`` returns a copy whose weights are encrypted; ``fit`` and ``predict`` then run
entirely on ciphertexts (forward pass, squared-error loss, backward pass and SGD update) and never
need the secret key: inputs and targets are plaintext, everything computed from the weights is
encrypted. ``model.decrypt(secret_key)`` gives the plain model back to the key holder.

The same object trains unencrypted (weights as NumPy arrays), so the two can be compared on the
same data and initial weights. Training goes through the one loop, :func:`hennframework.nn.train`.

>>> import numpy as np
>>> model = Sequential.mlp([2, 1], activation="exact", seed=0)
>>> x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 0.0])
>>> history = model.fit(x, y, epochs=20, learning_rate=0.5)
>>> history.steps, history.losses[-1] < history.losses[0]
(20, True)
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hennframework.exceptions import InputError, TrainingDivergedError
from hennframework.nn.activations import SigmoidApproximation
from hennframework.nn.batches import BagOfWords, Batch, as_matrix, make_batches
from hennframework.nn.initialisation import weight_random
from hennframework.nn.layers import Dense, EmbeddingSum, Layer, Sigmoid
from hennframework.nn.ops import is_encrypted, multiply_constant, sum_of_squares
from hennframework.nn.training import (
    History,
    Progress,
    Refresher,
    StepResult,
    TrainingState,
    count_correct,
    lowest_noise_budget,
    refresh_weights,
    train,
)
from hennframework.scheme import (
    AFTER_GATHERED_ROWS,
    GATHERED_ROWS,
    Capability,
    KeySet,
    require,
)

__all__ = [
    "NEEDED_FOR_TRAINING",
    "WORD_MODEL_DEFAULTS",
    "OwnerRefresher",
    "Sequential",
    "word_model_defaults",
]

#: Batch size and learning rate to train a word model (:meth:`Sequential.bag_of_words`) with,
#: per scheme name, where the caller gives none. The loss sums over the batch, so a larger batch
#: takes a larger step at the same rate. On CKKS at 128-bit a step costs far less than its batch
#: size suggests (the batch shares the slots of a few ciphertexts), so it trains 256 reviews a
#: step, at rate 0.025: one epoch on rt-polarity reaches 71.2 % to 73.0 % held-out accuracy
#: unencrypted (seeds 0 to 9; 72.5 % to 72.8 % at 32 and 0.1), while rate 0.05 diverged for 3 of
#: those 10 seeds (the polynomial sigmoid's input leaves its interval).
WORD_MODEL_DEFAULTS: dict[str, tuple[int, float]] = {
    "integer-vector": (32, 0.1),
    "ckks": (256, 0.025),
}
#: The same for other schemes and for unencrypted training.
WORD_MODEL_FALLBACK = (32, 0.1)


def word_model_defaults(
    scheme_name: str | None, batch_size: int | None = None, learning_rate: float | None = None
) -> tuple[int, float]:
    """(batch size, learning rate) for training a word model under ``scheme_name`` (None:
    unencrypted): those given, else the scheme's from :data:`WORD_MODEL_DEFAULTS`. The demo,
    ``henn train`` and ``henn federated run`` all resolve theirs here.

    >>> word_model_defaults("ckks")
    (256, 0.025)
    >>> word_model_defaults(None)
    (32, 0.1)
    >>> word_model_defaults("ckks", batch_size=8)
    (8, 0.025)
    """
    default_batch, default_rate = WORD_MODEL_DEFAULTS.get(scheme_name or "", WORD_MODEL_FALLBACK)
    return (
        default_batch if batch_size is None else batch_size,
        default_rate if learning_rate is None else learning_rate,
    )


NEEDED_FOR_TRAINING = (
    Capability.ADD,
    Capability.MUL_PLAIN,
    Capability.MATMUL_PLAIN,
    Capability.MUL_CIPHER,
    Capability.POLYNOMIAL,
)


def check_target_shape(given: tuple[int, ...], as_2d: tuple[int, ...], outputs: int | None) -> None:
    """Refuse targets whose width differs from the model's output (plain and encrypted alike).

    Without this, broadcasting would silently grow an output layer of width 1 to the target's
    width (encrypted) or fail later with a NumPy broadcasting error (plain).
    """
    if outputs is None or as_2d[1] == outputs:
        return
    wanted = f"({as_2d[0]},) or ({as_2d[0]}, 1)" if outputs == 1 else f"({as_2d[0]}, {outputs})"
    raise InputError(
        f"y has shape {tuple(given)} but the model has {outputs} output unit"
        f"{'s' if outputs != 1 else ''}, so y must have shape {wanted}. Pass one target column "
        f"per output unit, or build the model with {as_2d[1]} outputs."
    )


class Sequential:
    """Layers applied in order. Plain after construction; ``encrypt`` makes an encrypted copy."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        if not layers:
            raise InputError("a model needs at least one layer")
        self.layers = list(layers)
        width: int | None = None
        for layer in self.layers:  # refuses layers that cannot follow each other
            width = layer.output_width(width)
        self.scheme: Any = None  # set on encrypted models
        self.key_id: str | None = None
        self.history = History()
        self.state = TrainingState()

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def mlp(
        cls,
        sizes: Sequence[int],
        *,
        activation: str = "taylor3",
        output_activation: str | None = None,
        init_scale: float = 1.0,
        seed: int | None = None,
        bias: bool = False,
    ) -> Sequential:
        """Dense layers of ``sizes`` with sigmoid activations (a polynomial approximation).

        Initial weights come from the OS CSPRNG, or from ``default_rng(seed)`` when ``seed`` is
        given (reproducible experiments only: whoever knows it has the starting weights).
        """
        rng = weight_random(seed)
        layers: list[Layer] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(Dense(fan_in, fan_out, bias=bias, init_scale=init_scale, rng=rng))
            last = index == len(sizes) - 2
            layers.append(Sigmoid(output_activation or activation if last else activation))
        return cls(layers)

    @classmethod
    def bag_of_words(
        cls,
        vocabulary_size: int,
        hidden: int = 8,
        *,
        activation: str | SigmoidApproximation = "lsq3",
        seed: int | None = None,
    ) -> Sequential:
        """The sentiment network of Trask's 2017 post: words -> ``hidden`` (sum) -> 1 (sigmoid).

        ``EmbeddingSum`` (zeros) -> ``Dense(hidden, 1)`` (normal(0, 1), as in the post) ->
        ``Sigmoid``; inputs are :class:`~hennframework.nn.BagOfWords`. ``lsq3`` by default: the
        Taylor series diverges for |z| > 2, where a sentiment network's outputs often are.
        """
        rng = weight_random(seed)  # CSPRNG unless a seed is given on purpose
        return cls(
            [
                EmbeddingSum(vocabulary_size, hidden),
                Dense(hidden, 1, weights=rng.normal(0.0, 1.0, (hidden, 1))),
                Sigmoid(activation),
            ]
        )

    @property
    def encrypted(self) -> bool:
        return self.scheme is not None

    @property
    def reads_words(self) -> bool:
        """Whether the model's inputs are word indices (:class:`BagOfWords`), not numbers."""
        return isinstance(self.layers[0], EmbeddingSum)

    @property
    def vocabulary_size(self) -> int | None:
        """How many distinct words the model reads (None for a model of numeric inputs)."""
        first = self.layers[0]
        return first.vocabulary_size if isinstance(first, EmbeddingSum) else None

    def config(self) -> list[dict[str, Any]]:
        """Every layer's architecture (JSON-ready, no weights)."""
        return [layer.config() for layer in self.layers]

    def parameters(self) -> list[tuple[int, str, Any]]:
        """(layer index, parameter name, value) for every trainable parameter, in a fixed order."""
        return [
            (index, name, value)
            for index, layer in enumerate(self.layers)
            for name, value in layer.parameters().items()
        ]

    def parameter_uses(self) -> list[str | None]:
        """How the model uses each parameter (:meth:`parameters` order), for schemes that place
        values in ciphertext slots (:meth:`hennframework.scheme.HEScheme.encrypt_parameters`):
        an :class:`EmbeddingSum` table is :data:`~hennframework.scheme.GATHERED_ROWS`, and the
        weights of a :class:`Dense` layer right after it contract its columns
        (:data:`~hennframework.scheme.AFTER_GATHERED_ROWS`)."""
        uses: list[str | None] = []
        for index, layer in enumerate(self.layers):
            after_table = index > 0 and isinstance(self.layers[index - 1], EmbeddingSum)
            for name in layer.parameters():
                if isinstance(layer, EmbeddingSum) and name == "weights":
                    uses.append(GATHERED_ROWS)
                elif isinstance(layer, Dense) and name == "weights" and after_table:
                    uses.append(AFTER_GATHERED_ROWS)
                else:
                    uses.append(None)
        return uses

    def weights(self) -> list[Any]:
        """The parameter values in :meth:`parameters` order."""
        return [value for _, _, value in self.parameters()]

    def set_weights(self, values: Sequence[Any]) -> None:
        """Replace every parameter (same order and count as :meth:`weights`)."""
        slots = self.parameters()
        if len(values) != len(slots):
            raise InputError(f"the model has {len(slots)} parameters, got {len(values)} values")
        for (index, name, _), value in zip(slots, values, strict=True):
            self.layers[index].set_parameters({name: value})

    # -- encryption ------------------------------------------------------------------------
    def encrypt(self, keys: KeySet, scheme: Any = None) -> Sequential:
        """An encrypted copy of this model (weights encrypted with ``keys.public``)."""
        if self.encrypted:
            raise InputError("this model is already encrypted")
        scheme = scheme or keys.scheme
        if scheme is None:
            raise InputError("pass the scheme that made the keys: model.encrypt(keys, scheme)")
        require(scheme, NEEDED_FOR_TRAINING, "training an encrypted-weight network")
        for layer in self.layers:
            if isinstance(layer, Sigmoid) and layer.approximation is None:
                raise InputError(
                    "the exact sigmoid cannot run on encrypted values; build the model with a "
                    "polynomial approximation (e.g. activation='taylor3' or 'lsq3')"
                )
        clone = copy.deepcopy(self)
        clone.history, clone.state = History(), TrainingState()
        clone.set_weights(
            scheme.encrypt_parameters(self.weights(), keys.public, self.parameter_uses())
        )
        clone.scheme = scheme
        clone.key_id = keys.key_id
        return clone

    def decrypt(self, secret_key: Any) -> Sequential:
        """The plain model (key holder only): every encrypted weight decrypted."""
        if not self.encrypted:
            raise InputError("this model is not encrypted")
        plain = copy.copy(self)
        plain.layers = [copy.copy(layer) for layer in self.layers]
        plain.set_weights(
            [self.scheme.decrypt_tensor(value, secret_key) for value in self.weights()]
        )
        plain.scheme = None
        plain.key_id = None
        return plain

    def output_units(self) -> int | None:
        """Width of the model's output (None if unknown)."""
        width: int | None = None
        for layer in self.layers:
            width = layer.output_width(width)
        return width

    def min_noise_budget(self) -> float | None:
        """The smallest noise budget of the encrypted weights (None for a plain model)."""
        return lowest_noise_budget(self.weights()) if self.encrypted else None

    # -- forward / backward ----------------------------------------------------------------
    def forward(self, inputs: Any, caches: list[dict[str, Any]] | None = None) -> Any:
        out = inputs
        for layer in self.layers:
            cache: dict[str, Any] = {}
            out = layer.forward(out, cache)
            if caches is not None:
                caches.append(cache)
        return out

    @property
    def input_width(self) -> int | None:
        """How many numeric input columns the model takes (None: any, or word indices)."""
        first = self.layers[0]
        return first.inputs if isinstance(first, Dense) else None

    def _inputs(self, inputs: Any) -> Any:
        if isinstance(inputs, BagOfWords):
            return inputs
        x = as_matrix(inputs, "X")
        if self.input_width not in (None, x.shape[1]):
            raise InputError(
                f"X has {x.shape[1]} columns but the first layer expects {self.input_width}"
            )
        return x

    def predict(self, inputs: Any) -> Any:
        """Predictions: a plain array, or an encrypted tensor for an encrypted model."""
        return self.forward(self._inputs(inputs))

    def loss_and_gradients(
        self, inputs: Any, targets: Any, *, with_loss: bool = True
    ) -> tuple[Any, Any, list[dict[str, Any]]]:
        """Outputs, squared-error loss 1/2 * sum((output - target)**2) and gradients per layer.

        ``with_loss=False`` gives None for the loss and skips computing it (the gradients need
        only ``output - target``): on encrypted outputs the squaring and sum are a noticeable
        part of a step, and the training loop reads the loss only on logged steps.
        """
        caches: list[dict[str, Any]] = []
        outputs = self.forward(inputs, caches)
        error = outputs - targets
        loss = multiply_constant(sum_of_squares(error), 0.5) if with_loss else None
        delta = error
        grads: list[dict[str, Any]] = [{} for _ in self.layers]
        for index in range(len(self.layers) - 1, -1, -1):
            delta, grads[index] = self.layers[index].backward(delta, caches[index], index > 0)
        return outputs, loss, grads

    def apply_gradients(self, grads: list[dict[str, Any]], learning_rate: float) -> None:
        """SGD: each layer's ``updated`` value of each parameter (sparse where the layer says)."""
        # every update is computed before any is stored: an operation refused half-way (an
        # overflow risk) leaves all the weights as they were
        updates = [
            {name: layer.updated(name, grad, learning_rate) for name, grad in layer_grads.items()}
            for layer, layer_grads in zip(self.layers, grads, strict=True)
        ]
        for layer, values in zip(self.layers, updates, strict=True):
            layer.set_parameters(values)

    def train_step(
        self, batch: Batch, learning_rate: float, *, with_loss: bool = True
    ) -> StepResult:
        """One SGD step on a batch; changes no weight if it raises.

        ``with_loss=False`` skips the encrypted loss (``StepResult.loss`` is None); the update is
        the same. Plain weights always compute their loss (it costs next to nothing): a step
        whose loss or weights become NaN or infinite is undone and raises
        :class:`TrainingDivergedError` (a polynomial sigmoid grows without bound outside its
        interval, so too large a learning rate or inputs diverge within a few steps).
        """
        if self.encrypted:
            outputs, loss, grads = self.loss_and_gradients(
                batch.inputs, batch.targets, with_loss=with_loss
            )
            self.apply_gradients(grads, learning_rate)
            return StepResult(loss, outputs)
        before = self.weights()  # updates make new arrays
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, not as warnings
            outputs, loss, grads = self.loss_and_gradients(batch.inputs, batch.targets)
            if np.isfinite(loss):
                self.apply_gradients(grads, learning_rate)
        if np.isfinite(loss) and all(np.isfinite(w).all() for w in self.weights()):
            return StepResult(float(loss), outputs)
        self.set_weights(before)
        last = next((r.loss for r in reversed(self.history.records) if r.loss is not None), None)
        what = "the loss" if not np.isfinite(loss) else "the updated weights"
        raise TrainingDivergedError(
            f"training diverged at step {self.history.steps + 1}: {what} became NaN or "
            f"infinite" + (f" (last logged loss {last:.4g})" if last is not None else "") + ". "
            f"Lower the learning rate (it is {learning_rate:g}) or scale the inputs (e.g. "
            "standardise them): polynomial sigmoids grow without bound outside their interval. "
            "The weights are left as they were before that step."
        )

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        inputs: Any,
        targets: npt.ArrayLike | None = None,
        *,
        epochs: int = 1,
        learning_rate: float = 0.1,
        batch_size: int | None = None,
        refresh: Refresher | None = None,
        monitor: Callable[[Any], float] | None = None,
        log_every: int = 1,
        progress: Callable[[Progress], None] | None = None,
        min_noise_budget: float | None = None,
        absorb_noise: bool = True,
        finish_fresh: bool = False,
    ) -> History:
        """Train with SGD on squared error (scikit-learn-like; returns the history).

        ``inputs`` is a 2-D array or :class:`~hennframework.nn.BagOfWords` with ``targets``, cut
        into ``batch_size`` rows (None: everything per step), or a list of
        :class:`~hennframework.nn.Batch` with ``targets=None``. For encrypted models,
        ``refresh`` is the key holder's refresh provider (called before a step the noise budget
        would not carry) and ``monitor`` a key-holder callback that decrypts the loss for the
        records. ``absorb_noise`` absorbs the weights' noise after every step where the scheme
        can (:func:`hennframework.nn.absorb_weight_noise`; False: track it forward).
        ``finish_fresh`` refreshes the weights once more after the last step where they have
        less budget than a fresh encryption (CKKS: so that ``predict`` has the levels it needs).
        Runs :func:`hennframework.nn.train`; raises when the budget runs out and no refresh is
        possible, with the weights still decryptable.
        """
        if targets is None:
            if not isinstance(inputs, Sequence) or not all(isinstance(b, Batch) for b in inputs):
                raise InputError("pass X and y, or a list of hennframework.nn.Batch without y")
            batches = list(inputs)
        else:
            batches = make_batches(self._inputs(inputs), targets, batch_size)
            check_target_shape(np.shape(targets), batches[0].targets.shape, self.output_units())
        if self.encrypted:
            require(self.scheme, NEEDED_FOR_TRAINING, "training an encrypted-weight network")
        train(
            self,
            batches,
            epochs=epochs,
            learning_rate=learning_rate,
            refresh=refresh,
            history=self.history,
            state=self.state,
            min_noise_budget=min_noise_budget,
            log_every=log_every,
            monitor=monitor,
            progress=progress,
            absorb_noise=absorb_noise,
            finish_fresh=finish_fresh,
        )
        return self.history

    def evaluate(
        self, batches: Sequence[Batch], decrypt: Callable[[Any], Any] | None = None
    ) -> float:
        """Accuracy of 0/1 predictions (output >= 0.5) on ``batches``.

        An encrypted model needs ``decrypt`` (the key holder's) for its encrypted outputs.
        """
        correct = total = 0
        for batch in batches:
            output = self.predict(batch.inputs)
            if is_encrypted(output):
                if decrypt is None:
                    raise InputError("evaluating an encrypted model needs the key holder's decrypt")
                output = decrypt(output)
            correct += count_correct(output, batch.targets)
            total += batch.size
        return correct / total if total else 0.0

    def refresh(self, refresh: Refresher) -> None:
        """Replace the encrypted weights by fresh encryptions from the key holder's provider.

        Useful before inference on a scheme with a level budget (CKKS): training leaves the weights
        with only the levels the last step did not use.
        """
        if not self.encrypted:
            raise InputError("only an encrypted model can be refreshed")
        refresh_weights(self, refresh, self.history)


class OwnerRefresher:
    """In-process refresh by the key holder: decrypt and re-encrypt (counts its calls).

    Uses the scheme's own provider where it has one (``scheme.owner_refresher(keys)``, e.g.
    CKKS refreshing only to the levels a step uses), else ``scheme.refresh`` per tensor.
    ``full=True`` always takes ``scheme.refresh``: every refresh gives a fresh encryption's whole
    budget. That is for owners whose refreshed weights go through more than the training loop
    before the next refresh (federated averaging computes on the parties' updates after their
    steps, and cannot retry a step that ran short, as the loop does).

    The party sends ciphertexts and gets fresh encryptions of the same values back; it learns
    nothing new. The owner learns its own model's current weights, nothing about the party's data
    beyond what those weights reveal.
    """

    def __init__(self, scheme: Any, keys: KeySet, *, full: bool = False) -> None:
        self.scheme, self.keys, self.calls = scheme, keys, 0
        own = None if full else getattr(scheme, "owner_refresher", None)
        self.provider: Refresher | None = own(keys) if callable(own) else None

    def __call__(self, tensors: list[Any]) -> list[Any]:
        self.calls += 1
        if self.provider is not None:
            return list(self.provider(tensors))
        return [self.scheme.refresh(tensor, self.keys) for tensor in tensors]
