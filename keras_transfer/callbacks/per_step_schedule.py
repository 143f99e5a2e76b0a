"""`PerStepSchedule`: a per-step learning rate schedule sized by the data `fit` sees."""

import keras

from keras_transfer import _keras_compat
from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.schedules import StepOffset


class PerStepSchedule(keras.callbacks.Callback):
    """Gives the optimizer a per-step learning rate schedule sized by `fit`.

    A `keras.optimizers.schedules.LearningRateSchedule` needs the length of
    the run in optimizer steps when it is built, and the steps per epoch
    depend on the data. Keras' `LearningRateScheduler` changes the rate only
    once per epoch, and a callback that assigned the rate at every batch
    would be lost on JAX (the trainer carries variables between batches and
    syncs them once per epoch). This callback builds the schedule when
    `fit` starts, from the steps per epoch `fit` reports, and installs it as
    the optimizer's learning rate before the first step, so the rate is
    computed inside the compiled train step from the step counter on every
    backend:

    ```python
    schedule = make_schedule(steps_per_epoch, epochs)
    optimizer.learning_rate = schedule    # step s trains at schedule(s)
    ```

    Steps are counted from the start of the run: when the optimizer has
    already taken steps (a second `fit` of the same model) the schedule
    starts again at the first epoch of the new `fit`, through
    `keras_transfer.schedules.StepOffset`; a run resumed at
    `initial_epoch=k` (or by `keras.callbacks.BackupAndRestore`) continues
    the curve at epoch `k`. The schedule stays on the optimizer after
    `fit` (it is saved with the model).

    Args:
        make_schedule: Callable `(steps_per_epoch, epochs)` returning a
            `keras.optimizers.schedules.LearningRateSchedule`, or a float
            for a constant rate.
        epochs: Integer >= 1 or `None`. The length of the run the schedule
            is built for. A `fit` with more epochs raises. Defaults to
            `None`: the `epochs` of `fit`.
        steps_per_epoch: Integer >= 1 or `None`. Defaults to `None`: the
            number of batches per epoch that `fit` reports (known for
            arrays, `tf.data` datasets of known cardinality, a
            `keras.utils.PyDataset` with a length, or
            `fit(steps_per_epoch=...)`).

    Example:

    ```python
    cosine = keras_transfer.callbacks.PerStepSchedule(
        lambda steps_per_epoch, epochs: keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=(epochs - 1) * steps_per_epoch,
            warmup_target=1e-3,
            warmup_steps=steps_per_epoch,
        )
    )
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    x, y = np.random.rand(32, 4), np.random.rand(32, 3)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[cosine], verbose=0)
    # 4 steps per epoch: one epoch of warmup, then one of cosine decay.
    ```
    """

    def __init__(self, make_schedule, epochs=None, steps_per_epoch=None):
        super().__init__()
        if not callable(make_schedule):
            raise ValueError(
                "Invalid value received for argument `make_schedule`. Expected "
                "a callable (steps_per_epoch, epochs) -> schedule. "
                f"Received: make_schedule={make_schedule!r}"
            )
        self.make_schedule = make_schedule
        self.epochs = None if epochs is None else check_int("epochs", epochs, minimum=1)
        self.steps_per_epoch = (
            None
            if steps_per_epoch is None
            else check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        )
        self._installed = False

    def on_train_begin(self, logs=None):
        self._installed = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._installed:
            self.install(self.model, epoch)
            self._installed = True

    def run_length(self):
        """`(steps_per_epoch, epochs)` of the current `fit`, checked."""
        params = self.params or {}
        steps = self.steps_per_epoch or params.get("steps")
        if not steps:
            raise ValueError(
                "PerStepSchedule needs the number of steps per epoch, and this "
                "`fit` does not know it (the data has no known length). Pass "
                "`steps_per_epoch` to `fit` or to the callback. "
                f"Received: steps={steps!r}"
            )
        epochs = self.epochs or params.get("epochs")
        if params.get("epochs") and params["epochs"] > epochs:
            raise ValueError(
                f"The learning rate schedule was declared for a run of {epochs} "
                f"epochs, but `fit` runs {params['epochs']}. Pass the same "
                f"`epochs` to both. Received: epochs={params['epochs']}"
            )
        return int(steps), int(epochs)

    def install(self, model, epoch):
        """Builds the schedule and makes it the optimizer's learning rate.

        Args:
            model: The model being trained.
            epoch: The first epoch of this `fit`.
        """
        steps_per_epoch, epochs = self.run_length()
        schedule = self.make_schedule(steps_per_epoch, epochs)
        optimizer = _keras_compat.innermost_optimizer(model.optimizer)
        is_schedule = isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
        if is_schedule:
            done = int(keras.ops.convert_to_numpy(optimizer.iterations))
            offset = done - epoch * steps_per_epoch
            optimizer.learning_rate = StepOffset(schedule, offset) if offset else schedule
        elif isinstance(_keras_compat.raw_learning_rate(optimizer), keras.Variable):
            optimizer.learning_rate = float(check_number("learning_rate", schedule, above=0))
        else:
            raise ValueError(
                "Cannot set a constant learning rate: the optimizer already "
                "follows a learning rate schedule (from its constructor or an "
                "earlier `fit`), which Keras does not let a float replace. "
                "Compile the model with a fresh optimizer. "
                f"Received: learning_rate={schedule!r}"
            )
        # The compiled train step read the old rate when it was traced.
        model.make_train_function(force=True)
        _keras_compat.resync_jax_state(model)
