"""`fit_staged`: staged unfreezing as one `model.fit` call per stage."""

import keras

from keras_transfer.callbacks.staged_unfreezing import StagedUnfreezing


def fit_staged(
    model,
    stages,
    x=None,
    y=None,
    *,
    epochs,
    initial_epoch=0,
    target=None,
    train_bn=False,
    restart_schedule=False,
    callbacks=None,
    **fit_kwargs,
):
    """Trains with staged unfreezing, one `model.fit` per stage.

    Same `stages` semantics as `keras_transfer.callbacks.StagedUnfreezing`;
    between two `fit` calls the stage's layers are unfrozen, the optimizer is
    rebuilt keeping its state (`iterations`, moments of the variables it
    already trained) and the train function is re-made. Use it when you
    prefer plain `fit(initial_epoch=...)` segments to a callback; both give
    the same weights.

    Args:
        model: A compiled `keras.Model`.
        stages: Dict `{epoch: selector or (selector, lr_factor)}`.
        x: Input data, as for `model.fit`.
        y: Target data, as for `model.fit`.
        epochs: Int. Index of the epoch to train until, as for `model.fit`.
        initial_epoch: Int. Epoch to start at. Defaults to `0`.
        target: The model whose layers the selectors name. Defaults to
            `None` (`model`).
        train_bn: Bool. Also train the stages' BatchNormalization layers.
            Defaults to `False`.
        restart_schedule: Bool. Restart a `LearningRateSchedule` at each
            stage. Defaults to `False`.
        callbacks: List of callbacks passed to every `fit`.
        **fit_kwargs: Other `model.fit` arguments.

    Returns:
        A `keras.callbacks.History` with the epochs of all stages.

    Example:

    ```python
    x, y = keras_transfer.datasets.load_builtin("digits", "train", 16)
    base = keras_transfer.models.cnn_features((16, 16, 3))  # layers conv0.., conv1..
    keras_transfer.freeze(base)
    model = keras.Sequential([base, keras.layers.Dense(10)])
    model.compile(
        optimizer=keras_transfer.optimizers.LayerwiseOptimizer("adam"),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # Epoch 0: head only; epoch 1: + last block; epoch 2: + first block at lr/10.
    history = keras_transfer.callbacks.fit_staged(
        model, {1: "*1", 2: ("*0", 0.1)}, x[:64], y[:64],
        epochs=3, target=base, batch_size=32, verbose=0,
    )
    history.epoch  # [0, 1, 2]
    ```
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(
            "Invalid value received for argument `epochs`. Expected an int "
            f">= 1. Received: epochs={epochs!r}"
        )
    plan = StagedUnfreezing(
        stages,
        target=target,
        train_bn=train_bn,
        restart_schedule=restart_schedule,
    )
    plan.check_selectors(model)
    plan.warn_late_stages(epochs)
    starts = sorted(
        {initial_epoch} | {e for e in plan.stages if initial_epoch < e < epochs}
    )
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.epoch = []
    try:
        for start, end in zip(starts, starts[1:] + [epochs]):
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            plan.enter_epoch(model, start, first=True)
            history = model.fit(
                x,
                y,
                epochs=end,
                initial_epoch=start,
                callbacks=callbacks,
                **fit_kwargs,
            )
            merged.epoch.extend(history.epoch)
            for key, values in history.history.items():
                merged.history.setdefault(key, []).extend(values)
    finally:
        plan.restore_schedule(model)
    model.history = merged
    return merged
