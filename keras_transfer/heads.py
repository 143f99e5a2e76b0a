"""Classification head for transfer learning."""

import keras

_POOLINGS = ("avg", "max", "flatten", None)
_ACTIVATIONS = (None, "softmax", "sigmoid")
_POOLING_LAYERS = {
    "avg": keras.layers.GlobalAveragePooling2D,
    "max": keras.layers.GlobalMaxPooling2D,
    "flatten": keras.layers.Flatten,
}


def check_num_classes(num_classes):
    """The one rule for a number of classes: an int >= 1 (`1` is binary).

    Raises:
        ValueError: naming the value and what is allowed.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or (
        num_classes < 1
    ):
        raise ValueError(
            "Invalid value received for argument `num_classes`. Expected an "
            "integer >= 1 (1: binary classification with one logit). "
            f"Received: num_classes={num_classes!r}"
        )
    return num_classes


def check_class_names(class_names, num_classes):
    """`class_names` as a tuple of strings, one per class, or `None`.

    A binary head (`num_classes=1`) names its two classes.
    """
    if class_names is None:
        return None
    names = tuple(class_names)
    expected = 2 if num_classes == 1 else num_classes
    if len(names) != expected or not all(isinstance(name, str) for name in names):
        raise ValueError(
            "Invalid value received for argument `class_names`. Expected "
            f"{expected} strings for num_classes={num_classes}. "
            f"Received: class_names={class_names!r}"
        )
    return names


def find_head(model):
    """The last `ClassificationHead` among `model.layers`, or `None`."""
    heads = [layer for layer in model.layers if isinstance(layer, ClassificationHead)]
    return heads[-1] if heads else None


@keras.saving.register_keras_serializable(package="keras_transfer")
class ClassificationHead(keras.layers.Layer):
    """Pool -> [Dense + ReLU -> Dropout]* -> Dense classifier on a backbone.

    The layers run in this order: dropout once after each hidden layer,
    or once before the output layer when there is no hidden layer.

    ```python
    x = pool(features)                      # skipped when pooling=None
    for units in hidden_units:
        x = Dropout(dropout)(Dense(units, activation="relu")(x))
    if not hidden_units:
        x = Dropout(dropout)(x)             # a linear classifier's input
    outputs = Dense(num_classes, activation=activation)(x)
    ```

    So the output layer always sees its input dropped once at rate
    `dropout` (survivors scaled by `1 / (1 - dropout)`), and with several
    hidden layers each one's output is dropped once.

    Hidden layers are ReLU with He-normal initialisation; the output layer
    is Glorot-uniform. The output layer always computes in `float32`, so the
    logits (or probabilities) stay `float32` under mixed precision.

    Args:
        num_classes: Integer >= 1. Output units. `1` means binary
            classification with a single logit.
        pooling: How a feature map `(batch, h, w, c)` becomes a vector:
            `"avg"`, `"max"`, `"flatten"`, or `None` when the inputs are
            already `(batch, features)`. Defaults to `"avg"`.
        hidden_units: Tuple of integers >= 1, the widths of the hidden ReLU
            layers. Defaults to `()` (a linear classifier).
        dropout: Float in `[0, 1)`. Rate of the dropout after each hidden
            layer, or before the output layer when there is no hidden
            layer (see the order above). Defaults to `0.0`.
        activation: `None` (logits), `"softmax"` or `"sigmoid"`. Defaults
            to `None`.
        data_format: `"channels_last"` or `"channels_first"`, for pooling.
            Defaults to `keras.config.image_data_format()`.
        kernel_regularizer: A `keras.regularizers.Regularizer` (or its
            identifier, e.g. `keras.regularizers.L1L2(l1=1e-5, l2=1e-4)`)
            added to the loss for the kernel of every Dense layer of the
            head. Defaults to `None`.
        class_names: Sequence of strings or `None`. The name of each class,
            in label order: one per output unit, or two (negative, positive)
            for a binary head. Stored in the layer's config, so a saved
            `.keras` model keeps them (`keras-transfer predict` prints
            them). Defaults to `None`.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: Features, `(batch, h, w, c)` (or `(batch, features)` with
            `pooling=None`).
        training: Python boolean, whether dropout is active.

    Example:

    ```python
    feature_map = keras.Input((4, 4, 32))  # a backbone's output
    head = keras_transfer.heads.ClassificationHead(10, hidden_units=(64,))
    outputs = head(feature_map)  # (None, 10) logits
    model = keras.Model(feature_map, outputs)
    model.compile(
        optimizer="adam", loss=head.loss(), metrics=head.default_metrics()
    )
    ```
    """

    def __init__(
        self,
        num_classes,
        pooling="avg",
        hidden_units=(),
        dropout=0.0,
        activation=None,
        data_format=None,
        kernel_regularizer=None,
        class_names=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_num_classes(num_classes)
        self.class_names = check_class_names(class_names, num_classes)
        if pooling not in _POOLINGS:
            raise ValueError(
                "Invalid value received for argument `pooling`. Expected one "
                f"of {_POOLINGS}. Received: pooling={pooling!r}"
            )
        hidden_units = tuple(hidden_units)
        if not all(isinstance(u, int) and u >= 1 for u in hidden_units):
            raise ValueError(
                "Invalid value received for argument `hidden_units`. "
                "Expected a tuple of integers >= 1. "
                f"Received: hidden_units={hidden_units!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                "Invalid value received for argument `dropout`. Expected a "
                f"float in [0, 1). Received: dropout={dropout!r}"
            )
        if activation not in _ACTIVATIONS:
            raise ValueError(
                "Invalid value received for argument `activation`. Expected "
                f"one of {_ACTIVATIONS}. Received: activation={activation!r}"
            )
        if activation == "softmax" and num_classes == 1:
            raise ValueError(
                "Invalid value received for argument `activation`. A softmax "
                "over one class is always 1; use activation='sigmoid' or None "
                "for binary classification. Received: activation='softmax', "
                "num_classes=1"
            )
        self.num_classes = num_classes
        self.pooling = pooling
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.activation = activation
        self.data_format = data_format or keras.config.image_data_format()
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        self.pool = (
            _POOLING_LAYERS[pooling](data_format=self.data_format)
            if pooling
            else None
        )
        self.hidden_layers = [
            keras.layers.Dense(
                units,
                activation="relu",
                kernel_initializer=keras.initializers.HeNormal(),
                kernel_regularizer=self.kernel_regularizer,
                dtype=self.dtype_policy,
                name=f"hidden_{i}",
            )
            for i, units in enumerate(hidden_units)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.classifier = keras.layers.Dense(
            num_classes,
            activation=activation,
            kernel_initializer=keras.initializers.GlorotUniform(),
            kernel_regularizer=self.kernel_regularizer,
            dtype="float32",
            name="logits" if activation is None else "predictions",
        )

    @property
    def from_logits(self):
        """Whether the outputs are logits (no final activation)."""
        return self.activation is None

    def build(self, input_shape):
        shape = input_shape
        if self.pool is not None:
            self.pool.build(shape)
            shape = self.pool.compute_output_shape(shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.classifier.build(shape)

    def call(self, inputs, training=None):
        x = inputs if self.pool is None else self.pool(inputs)
        for layer in self.hidden_layers:
            x = self.dropout_layer(layer(x), training=training)
        if not self.hidden_layers:
            x = self.dropout_layer(x, training=training)
        return self.classifier(x, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(
            (inputs.shape[0], self.num_classes), dtype="float32"
        )

    def loss(self):
        """The Keras loss that matches this head's outputs.

        `SparseCategoricalCrossentropy` for multi-class heads (integer
        labels), `BinaryCrossentropy` for one unit or a sigmoid (multi-label)
        head, with `from_logits` set to `self.from_logits`.
        """
        if self.num_classes == 1 or self.activation == "sigmoid":
            return keras.losses.BinaryCrossentropy(from_logits=self.from_logits)
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=self.from_logits
        )

    def default_metrics(self):
        """An accuracy metric that reads this head's outputs correctly."""
        if self.num_classes == 1 or self.activation == "sigmoid":
            threshold = 0.0 if self.from_logits else 0.5
            return [
                keras.metrics.BinaryAccuracy(threshold=threshold, name="accuracy")
            ]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "hidden_units": list(self.hidden_units),
            "dropout": self.dropout,
            "activation": self.activation,
            "data_format": self.data_format,
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "class_names": None if self.class_names is None else list(self.class_names),
        }
