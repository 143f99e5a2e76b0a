"""The learning rate range test (Smith, 2017), fastai style."""

import dataclasses
import itertools

import keras
import numpy as np

from keras_transfer import _keras_compat
from keras_transfer._validation import check_int
from keras_transfer._validation import check_number

__all__ = ["LRFinderResult", "lr_find"]


@dataclasses.dataclass
class LRFinderResult:
    """What `lr_find` measured.

    Attributes:
        lrs: Learning rate of each step taken, shape `(n,)`.
        losses: Smoothed (bias-corrected exponential moving average) training
            loss after each step, shape `(n,)`.
        raw_losses: The training loss of each batch, shape `(n,)`.
        suggestion: The learning rate where the smoothed loss falls fastest
            (steepest negative slope against `log(lr)`, looked for up to the
            minimum loss, skipping the first tenth of the steps), or `None`
            when fewer than 2 steps were recorded.
        min_loss_lr: One tenth of the learning rate at the minimum smoothed
            loss (the other fastai rule of thumb; first tenth skipped too),
            or `None` likewise.
        diverged: Whether the sweep stopped early because the loss blew up.
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float | None
    min_loss_lr: float | None
    diverged: bool

    def plot(self, path):
        """Writes loss against learning rate (log scale) to an image file.

        Needs matplotlib (`pip install matplotlib`). Does not touch pyplot's
        global state.

        Args:
            path: Output file; the format follows its extension (`.png`,
                `.pdf`, `.svg`).
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as error:
            raise ImportError(
                "Plotting the LR range test needs matplotlib: "
                "`pip install matplotlib` (or `keras-transfer[plot]`)."
            ) from error
        figure = Figure(figsize=(6, 4))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.plot(self.lrs, self.raw_losses, alpha=0.3, label="batch loss")
        axes.plot(self.lrs, self.losses, label="smoothed loss")
        if self.suggestion is not None:
            axes.axvline(
                self.suggestion,
                color="red",
                linestyle="--",
                label=f"suggestion {self.suggestion:.2e}",
            )
        axes.set_xscale("log")
        axes.set_xlabel("learning rate")
        axes.set_ylabel("training loss")
        limits = self.loss_limits()
        if limits is not None:
            axes.set_ylim(*limits)
        axes.legend(loc="upper left")
        figure.tight_layout()
        figure.savefig(path)

    def loss_limits(self):
        """The y-range worth looking at: `(low, high)`, or `None` if empty.

        From just below the lowest smoothed loss to just above the highest
        smoothed loss *before* that minimum: the descent the suggestion is
        read from. The blow-up after the minimum (losses that can be orders
        of magnitude larger) is cut off instead of flattening the curve.
        """
        losses = np.asarray(self.losses, dtype="float64")
        losses = losses[np.isfinite(losses)]
        if losses.size == 0:
            return None
        lowest = int(np.argmin(losses))
        low, high = float(losses[lowest]), float(np.max(losses[: lowest + 1]))
        pad = 0.1 * (high - low) or 0.1 * abs(low) or 0.1
        return low - pad, high + pad


def lr_find(
    model,
    data,
    *,
    min_lr=1e-7,
    max_lr=10.0,
    num_steps=100,
    smoothing=0.98,
    diverge_threshold=4.0,
    batch_size=32,
    plot_path=None,
):
    """Runs the learning rate range test and restores the model afterwards.

    Trains `model` for up to `num_steps` real optimizer steps while the
    learning rate grows exponentially from `min_lr` to `max_lr`, records the
    training loss, and stops early once the smoothed loss exceeds
    `diverge_threshold` times its minimum (or is not finite). The learning
    rate is driven by an in-graph schedule of the optimizer step
    (`keras.optimizers.schedules.ExponentialDecay` with a growth rate), so it
    is the same on TensorFlow, JAX and PyTorch:

    ```python
    lr(i) = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))
    ```

    The model's variables, the optimizer's variables (moments, iteration
    count) and its learning rate or schedule are restored bit for bit
    afterwards, also when the sweep raises. An optimizer not yet built is
    built first (its fresh state is what gets restored).

    Cost: `num_steps` training steps plus one retrace of the train function
    before and after the sweep.

    Args:
        model: A compiled, built `keras.Model`, with the optimizer you will
            train with (Adam and SGD suggest different rates).
        data: `(x, y)` or `(x, y, sample_weight)` numpy arrays (batched by
            `batch_size`), a `keras.utils.PyDataset`, or any iterable of
            batches (`tf.data.Dataset`, torch `DataLoader`, generator). It is
            cycled when shorter than `num_steps`.
        min_lr: Float > 0. First learning rate. Defaults to `1e-7`.
        max_lr: Float > `min_lr`. Last learning rate. Defaults to `10.0`.
        num_steps: Integer >= 2. Number of steps of the sweep. Defaults to
            `100`.
        smoothing: Float in [0, 1). Weight of the past in the moving average
            of the loss. Defaults to `0.98`.
        diverge_threshold: Float > 1. Stop once the smoothed loss exceeds
            this times its minimum. Defaults to `4.0`.
        batch_size: Integer >= 1. Batch size for numpy `data`. Defaults to
            `32`.
        plot_path: Optional path of an image of loss against learning rate
            (needs matplotlib). Defaults to `None`.

    Returns:
        An `LRFinderResult` with `lrs`, `losses`, `raw_losses`, `suggestion`,
        `min_loss_lr` and `diverged`.

    Example:

    ```python
    x, y = keras_transfer.datasets.load_builtin("digits", "train", 16)
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    result = keras_transfer.lr_find(model, (x, y), num_steps=20, plot_path="lr.png")
    model.optimizer.learning_rate = result.suggestion
    model.fit(x, y, epochs=1, verbose=0)
    ```

    Reference:
        - [Smith, 2017](https://arxiv.org/abs/1506.01186)
    """
    check_number("min_lr", min_lr, above=0)
    check_number("max_lr", max_lr, above=min_lr)
    num_steps = check_int("num_steps", num_steps, minimum=2)
    check_number("smoothing", smoothing, minimum=0)
    if smoothing >= 1:
        raise ValueError(
            "Invalid value received for argument `smoothing`. Expected a "
            f"number in [0, 1). Received: smoothing={smoothing!r}"
        )
    check_number("diverge_threshold", diverge_threshold, above=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            "Invalid value received for argument `model`. Expected a model "
            "compiled with an optimizer and a loss (call `model.compile`). "
            f"Received: model={model.name!r}, not compiled"
        )
    if not model.built:
        raise ValueError(
            "Invalid value received for argument `model`. Expected a built "
            "model (call it on a batch first). "
            f"Received: model={model.name!r}, not built"
        )
    batches = _cycle(data, batch_size)
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    state = _unique(
        list(model.variables)
        + list(model.optimizer.variables)
        + list(model.metrics_variables)
    )
    saved = [np.array(keras.ops.convert_to_numpy(v)) for v in state]
    original_learning_rate = _keras_compat.raw_learning_rate(optimizer)
    growth = max_lr / min_lr
    lrs, raw, smoothed = [], [], []
    diverged = False
    try:
        # Keras has no public way to swap the learning rate of a
        # schedule-driven optimizer, nor to reset the step counter under
        # gradient accumulation; both are put back below.
        _keras_compat.set_raw_learning_rate(
            optimizer,
            keras.optimizers.schedules.ExponentialDecay(
                min_lr, decay_steps=num_steps - 1, decay_rate=growth
            ),
        )
        _keras_compat.reset_iterations(optimizer)
        model.make_train_function(force=True)
        average = 0.0
        for step in range(num_steps):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
                next(batches)
            )
            logs = model.train_on_batch(
                x, y, sample_weight=sample_weight, return_dict=True
            )
            loss = float(logs["loss"])
            if not np.isfinite(loss):
                diverged = True
                break
            average = smoothing * average + (1 - smoothing) * loss
            lrs.append(min_lr * growth ** (step / (num_steps - 1)))
            raw.append(loss)
            smoothed.append(average / (1 - smoothing ** (step + 1)))
            if smoothed[-1] > diverge_threshold * min(smoothed):
                diverged = True
                break
    finally:
        _keras_compat.set_raw_learning_rate(optimizer, original_learning_rate)
        for variable, value in zip(state, saved):
            variable.assign(value)
        model.make_train_function(force=True)
    result = LRFinderResult(
        lrs=np.array(lrs),
        losses=np.array(smoothed),
        raw_losses=np.array(raw),
        suggestion=None,
        min_loss_lr=None,
        diverged=diverged,
    )
    if len(lrs) >= 2:
        result.suggestion, result.min_loss_lr = _suggest(
            result.lrs, result.losses
        )
    if plot_path is not None:
        result.plot(plot_path)
    return result


def _suggest(lrs, losses):
    """Steepest descent of the loss before its minimum, and min-loss lr / 10.

    The first tenth of the steps is left out (as fastai's plot does): there
    the moving average has seen few batches and follows their noise.
    """
    start = len(lrs) // 10
    lowest = start + int(np.argmin(losses[start:]))
    end = max(lowest, start + 1) + 1
    slopes = np.gradient(losses[start:end], np.log(lrs[start:end]))
    steepest = start + int(np.argmin(slopes))
    return float(lrs[steepest]), float(lrs[lowest] / 10)


def _unique(variables):
    seen, unique = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique


def _cycle(data, batch_size):
    """Checks `data` and returns an endless iterator over its batches."""
    if (
        isinstance(data, (tuple, list))
        and data
        and all(isinstance(part, np.ndarray) for part in data)
    ):
        if not data or len(data) > 3 or len({len(p) for p in data}) != 1:
            raise ValueError(
                "Invalid value received for argument `data`. Expected "
                "(x, y) or (x, y, sample_weight) arrays of equal length. "
                f"Received: data with shapes {[p.shape for p in data]}"
            )
        return _array_batches(data, batch_size)
    if isinstance(data, keras.utils.PyDataset):
        return (data[i % len(data)] for i in itertools.count())
    if not hasattr(data, "__iter__"):
        raise ValueError(
            "Invalid value received for argument `data`. Expected numpy "
            "arrays (x, y), a keras.utils.PyDataset or an iterable of "
            f"batches. Received: data={type(data).__name__}"
        )
    return _iterable_batches(data)


def _array_batches(arrays, batch_size):
    size = len(arrays[0])
    while True:
        for start in range(0, size, batch_size):
            yield tuple(part[start : start + batch_size] for part in arrays)


def _iterable_batches(data):
    while True:
        empty = True
        for batch in data:
            empty = False
            yield keras.tree.map_structure(np.asarray, batch)
        if empty:
            raise ValueError(
                "Invalid value received for argument `data`. Expected an "
                "iterable that yields batches. Received: an empty iterable"
            )
