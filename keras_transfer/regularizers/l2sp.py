import keras
import numpy as np
from keras import ops

from keras_transfer import _keras_compat
from keras_transfer._validation import check_number


@keras.saving.register_keras_serializable(package="keras_transfer")
class L2SP(keras.regularizers.Regularizer):
    """Squared distance of a weight to its starting point (L2-SP).

    ```python
    penalty = alpha / 2 * sum((w - reference) ** 2)
    ```

    With `reference=None` this is the plain `alpha / 2 * sum(w ** 2)`, which
    L2-SP applies to the new head weights (the paper's `beta` term). Unlike
    weight decay, which pulls a fine-tuned backbone back towards zero and so
    away from what it learned in pretraining, L2-SP pulls it towards the
    pretrained weights.

    You rarely build it by hand: `keras_transfer.regularizers.apply_l2sp`
    snapshots a whole backbone and attaches one `L2SP` per weight.

    Args:
        alpha: Float >= 0. Strength of the penalty.
        reference: Array of the weight's shape (the starting point `w0`), or
            `None` to pull towards zero. It is copied into a non-trainable
            variable. Defaults to `None`.

    Example:

    ```python
    pretrained = np.ones((3, 4), "float32")  # e.g. a pretrained kernel
    penalty = keras_transfer.regularizers.L2SP(0.01, reference=pretrained)
    print(float(penalty(np.zeros((3, 4)))))  # 0.01 / 2 * 12 = 0.06
    dense = keras.layers.Dense(4, kernel_regularizer=penalty)  # on 3 inputs
    ```

    Reference:
        - [Li, Grandvalet & Davoine, 2018](https://arxiv.org/abs/1802.01483)
    """

    def __init__(self, alpha, reference=None):
        self.alpha = check_number("alpha", alpha, minimum=0)
        if reference is not None:
            reference = keras.Variable(
                np.asarray(reference, dtype="float32"),
                trainable=False,
                name="l2sp_reference",
            )
        self.reference = reference

    def __call__(self, x):
        if self.reference is not None:
            x = ops.convert_to_tensor(x)
            x = ops.subtract(x, ops.cast(self.reference, x.dtype))
        return 0.5 * self.alpha * ops.sum(ops.square(x))

    def get_config(self):
        reference = self.reference
        if reference is not None:
            reference = ops.convert_to_numpy(reference).tolist()
        return {"alpha": self.alpha, "reference": reference}


def apply_l2sp(model, backbone, alpha=0.01, beta=0.01):
    """Attaches L2-SP regularization to a transfer model in one call.

    Adds to the training loss

    ```python
    alpha / 2 * sum(||w - w0||^2 for w in backbone weights)
        + beta / 2 * sum(||w||^2 for w in the other (head) weights)
    ```

    where `w0` is the value of each backbone weight *now* (call this right
    after loading the pretrained weights). The snapshot includes currently
    frozen weights, so the pull applies as soon as they are unfrozen; frozen
    weights add nothing (Keras only regularizes trainable variables).
    Non-trainable state such as BatchNormalization moving statistics is
    ignored. The penalty is set as `variable.regularizer` on each weight, so
    it enters `model.losses` and the loss of `fit` on every backend; train and
    test functions built before this call are rebuilt.

    The snapshot costs one extra copy of the backbone's trainable weights in
    memory. The attachment is not saved by `model.save`: call `apply_l2sp`
    again (with the pretrained weights loaded) to resume training.

    Args:
        model: The `keras.Model` being trained.
        backbone: The pretrained `keras.layers.Layer` (usually a sub-model)
            inside `model`.
        alpha: Float >= 0. Strength of the pull towards the pretrained
            weights. Defaults to `0.01`.
        beta: Float >= 0 or `None`. Strength of the plain L2 penalty on the
            head. `None` leaves the head's weights as they are, with their own
            regularizers (e.g. a `kernel_regularizer` given to
            `keras_transfer.heads.ClassificationHead`). Defaults to `0.01`.

    Returns:
        The list of backbone variables that were snapshotted.

    Example:

    ```python
    # In real use, a pretrained backbone such as
    # keras.applications.ResNet50(include_top=False, pooling="avg").
    backbone = keras_transfer.models.cnn_features((32, 32, 3))
    model = keras.Sequential([backbone, keras.layers.Dense(10)])
    keras_transfer.regularizers.apply_l2sp(
        model, backbone, alpha=0.01, beta=0.01
    )
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    images, labels = keras_transfer.datasets.load_builtin("digits", "train")
    model.fit(images[:8], labels[:8], epochs=1)  # loss includes the penalties
    ```

    Reference:
        - [Li, Grandvalet & Davoine, 2018](https://arxiv.org/abs/1802.01483)
    """
    check_number("alpha", alpha, minimum=0)
    if beta is not None:
        check_number("beta", beta, minimum=0)
    pretrained = _keras_compat.created_trainable_variables(backbone)
    if not pretrained:
        raise ValueError(
            "Invalid value received for argument `backbone`. Expected a "
            "built layer with weights inside `model`. "
            f"Received: backbone={backbone!r} with no trainable weights"
        )
    everything = _keras_compat.created_trainable_variables(model)
    model_ids = {id(v) for v in everything}
    if any(id(v) not in model_ids for v in pretrained):
        raise ValueError(
            "Invalid value received for argument `backbone`. Expected a "
            f"layer inside `model` ({model.name!r}). "
            f"Received: backbone={backbone.name!r}, whose weights `model` "
            "does not contain"
        )
    pretrained_ids = {id(v) for v in pretrained}
    head = [] if beta is None else [v for v in everything if id(v) not in pretrained_ids]
    for variable in pretrained + head:
        if variable.regularizer is not None and not isinstance(
            variable.regularizer, L2SP
        ):
            raise ValueError(
                f"Variable {variable.path!r} already has the regularizer "
                f"{variable.regularizer!r}. L2-SP replaces weight "
                "regularization; build the model without it."
            )
    for variable in pretrained:
        variable.regularizer = (
            L2SP(alpha, reference=ops.convert_to_numpy(variable))
            if alpha
            else None
        )
    for variable in head:
        variable.regularizer = L2SP(beta) if beta else None
    _rebuild_train_function(model)
    return pretrained


def remove_l2sp(model):
    """Removes every `L2SP` penalty from `model`'s weights.

    Args:
        model: A `keras.Model` given to `apply_l2sp` before.
    """
    for variable in _keras_compat.created_trainable_variables(model):
        if isinstance(variable.regularizer, L2SP):
            variable.regularizer = None
    _rebuild_train_function(model)


def _rebuild_train_function(model):
    # Compiled train/test functions captured the old regularizers (JAX
    # traces them into the jitted step, TF into the tf.function).
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    if getattr(model, "test_function", None) is not None:
        model.make_test_function(force=True)
