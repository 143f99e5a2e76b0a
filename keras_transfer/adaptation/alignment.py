"""Unsupervised domain adaptation trained with plain `model.fit`.

Three methods share one shape: a feature extractor feeds a label head and a
domain branch, in a functional model with outputs `{"label", "domain"}`.

- DANN (Ganin et al. 2016, https://arxiv.org/abs/1505.07818): `"domain"` is
  the logit of a discriminator placed behind a `GradientReversal` layer,
  trained with binary cross-entropy on the domain indicator.
- Deep CORAL (https://arxiv.org/abs/1607.01719) and DAN / multi-kernel MMD
  (https://arxiv.org/abs/1502.02791): `"domain"` is the feature vector
  itself and the loss (`CoralLoss`, `MMDLoss`) compares its source rows with
  its target rows.

`keras_transfer.datasets.paired_dataset` mixes labelled source rows and
unlabelled target rows into balanced batches whose sample weights hide the
target labels from the label loss; the domain loss sees every row.
`model.classifier` is the trained input -> label-logits path as an ordinary
`keras.Model`, compiled with the label loss and an accuracy metric.
"""

import keras

from keras_transfer._validation import check_number
from keras_transfer.heads import ClassificationHead
from keras_transfer.layers.gradient_reversal import GradientReversal
from keras_transfer.losses.coral import CoralLoss
from keras_transfer.losses.mmd import MMDLoss
from keras_transfer.models.compile import compile_args


@keras.saving.register_keras_serializable(package="keras_transfer")
class AdaptationModel(keras.Model):
    """A functional model with outputs `{"label": logits, "domain": ...}`.

    Built by `build_dann`, `build_coral` and `build_mmd`; train it with
    `model.fit(keras_transfer.datasets.paired_dataset(...))`.
    """

    @property
    def classifier(self):
        """The input -> label-logits path, sharing the trained weights.

        No discriminator, no gradient reversal: an ordinary classifier for
        evaluation and export, compiled with the model's label loss and an
        accuracy metric that reads it (`"accuracy"`), so
        `model.classifier.evaluate(x_test, y_test)` works as it comes.
        Each access builds a new `keras.Model` over the same layers.
        """
        # One input as a tensor, not a one-element list: called on one array
        # (as `predict` and export do), a list input makes Keras warn that
        # the structure of `inputs` does not match.
        inputs = self.inputs[0] if len(self.inputs) == 1 else self.inputs
        classifier = keras.Model(inputs, self.output["label"], name=f"{self.name}_classifier")
        label_loss = self.loss.get("label") if isinstance(self.loss, dict) else None
        classifier.compile(**_label_compile_args(label_loss))
        return classifier


def _label_compile_args(label_loss):
    """A fresh copy of the label loss and the accuracy that matches it."""
    if label_loss is None:
        args = compile_args(None)
        return {"loss": args["loss"], "metrics": args["metrics"]}
    # from_config, not serialize/deserialize: Keras' serializer probes for
    # TensorFlow (keras/src/saving/serialization_lib.py), and loading a saved
    # model on JAX or torch must not import it.
    loss = type(label_loss).from_config(label_loss.get_config())
    if isinstance(loss, keras.losses.BinaryCrossentropy):
        threshold = 0.0 if loss.get_config().get("from_logits") else 0.5
        metrics = [keras.metrics.BinaryAccuracy(threshold=threshold, name="accuracy")]
    else:
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return {"loss": loss, "metrics": metrics}


def default_discriminator(units=(1024, 1024), dropout=0.5, name="discriminator"):
    """The DANN domain discriminator: an MLP ending in one logit.

    Args:
        units: Tuple of integers. Hidden layer widths. Defaults to
            `(1024, 1024)` as in the DANN paper; smaller widths (e.g.
            `(256,)`) suffice for small feature extractors.
        dropout: Float in [0, 1). Dropout after each hidden layer. Defaults
            to `0.5`.
        name: String. Model name.

    Returns:
        A `keras.Sequential` mapping features to one domain logit.
    """
    if not units or any(not isinstance(u, int) or u < 1 for u in units):
        raise ValueError(
            "Invalid value received for argument `units`. Expected a "
            f"non-empty tuple of positive integers. Received: units={units}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(
            "Invalid value received for argument `dropout`. Expected a float "
            f"in [0, 1). Received: dropout={dropout}"
        )
    layers = [keras.layers.Flatten()]
    for width in units:
        layers += [keras.layers.Dense(width, activation="relu")]
        if dropout:
            layers += [keras.layers.Dropout(dropout)]
    layers += [keras.layers.Dense(1)]
    return keras.Sequential(layers, name=name)


def model_inputs(feature_extractor, input_shape):
    """`(inputs, features)`: a `keras.Input` and the extractor applied to it."""
    if input_shape is None:
        try:
            input_shape = tuple(feature_extractor.input_shape[1:])
        except (AttributeError, ValueError):
            raise ValueError(
                "Invalid value received for argument `input_shape`. The "
                "feature extractor has no known input shape; pass "
                f"`input_shape`. Received: input_shape={input_shape}"
            )
    inputs = keras.Input(shape=input_shape, name="inputs")
    return inputs, feature_extractor(inputs)


def compile_adaptation(
    model, label_head, domain_loss, domain_loss_weight, optimizer, domain_metrics
):
    """Compiles `{"label", "domain"}`: the head's loss + weighted domain loss."""
    check_number("domain_loss_weight", domain_loss_weight, minimum=0)
    head = label_head if isinstance(label_head, ClassificationHead) else None
    label = compile_args(optimizer or "adam", head)
    model.compile(
        optimizer=label["optimizer"],
        loss={"label": label["loss"], "domain": domain_loss},
        loss_weights={"label": 1.0, "domain": domain_loss_weight},
        weighted_metrics={"label": label["metrics"], "domain": domain_metrics},
    )
    return model


def build_dann(
    feature_extractor,
    label_head,
    discriminator=None,
    hp_lambda=1.0,
    domain_loss_weight=1.0,
    optimizer=None,
    input_shape=None,
    name="dann",
):
    """Domain-adversarial network: features -> label head and GRL -> discriminator.

    ```python
    label = label_head(f(x))
    domain = discriminator(GradientReversal(hp_lambda)(f(x)))
    loss = CE(label, y)[source rows] + domain_loss_weight * BCE(domain, d)
    ```

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        discriminator: A Keras model or layer mapping features to one domain
            logit. Defaults to `default_discriminator()` (MLP 1024-1024).
        hp_lambda: Float >= 0 or schedule `fn(step)` for the gradient
            reversal, e.g. `keras_transfer.schedules.DANNLambda`. Defaults
            to `1.0`.
        domain_loss_weight: Float >= 0. Weight of the domain loss. Defaults
            to `1.0`.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `AdaptationModel` with outputs `{"label", "domain"}`.

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3))  # or a pretrained backbone
    head = keras.layers.Dense(10)                                 # class logits
    model = keras_transfer.adaptation.build_dann(features, head)
    model.fit(keras_transfer.adaptation.paired_dataset(
        source=(x_source[:64], y_source[:64]), target=x_target[:64], batch_size=32),
        epochs=1)  # epochs=10+ on the full data in real use
    loss, accuracy = model.classifier.evaluate(x_test, y_test)  # target accuracy
    ```
    """
    inputs, features = model_inputs(feature_extractor, input_shape)
    discriminator = discriminator or default_discriminator()
    reversed_features = GradientReversal(hp_lambda, name="gradient_reversal")(
        features
    )
    model = AdaptationModel(
        inputs,
        {
            "label": label_head(features),
            "domain": discriminator(reversed_features),
        },
        name=name,
    )
    return compile_adaptation(
        model,
        label_head,
        keras.losses.BinaryCrossentropy(from_logits=True),
        domain_loss_weight,
        optimizer,
        [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )


def _build_aligned(
    feature_extractor, label_head, alignment_loss, domain_loss_weight, optimizer,
    input_shape, name,
):
    inputs, features = model_inputs(feature_extractor, input_shape)
    model = AdaptationModel(
        inputs,
        {
            "label": label_head(features),
            "domain": keras.layers.Flatten(name="domain_features")(features),
        },
        name=name,
    )
    return compile_adaptation(
        model, label_head, alignment_loss, domain_loss_weight, optimizer, []
    )


def build_coral(
    feature_extractor,
    label_head,
    domain_loss_weight=1.0,
    optimizer=None,
    input_shape=None,
    name="coral",
):
    """Deep CORAL: classification loss + CORAL between source and target features.

    The `"domain"` output is the (flattened) feature vector; its loss is
    `keras_transfer.losses.CoralLoss` on the domain indicator.

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        domain_loss_weight: Float >= 0. Weight of the CORAL loss. Defaults
            to `1.0`.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `AdaptationModel` with outputs `{"label", "domain"}`.
    """
    return _build_aligned(
        feature_extractor, label_head, CoralLoss(), domain_loss_weight,
        optimizer, input_shape, name,
    )


def build_mmd(
    feature_extractor,
    label_head,
    domain_loss_weight=1.0,
    num_kernels=5,
    kernel_multiplier=2.0,
    estimator="biased",
    optimizer=None,
    input_shape=None,
    name="mmd",
):
    """DAN-style adaptation: classification loss + multi-kernel MMD on features.

    The `"domain"` output is the (flattened) feature vector; its loss is
    `keras_transfer.losses.MMDLoss` on the domain indicator.

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        domain_loss_weight: Float >= 0. Weight of the MMD loss. Defaults to
            `1.0`.
        num_kernels, kernel_multiplier, estimator: As for
            `keras_transfer.losses.MMDLoss`.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `AdaptationModel` with outputs `{"label", "domain"}`.
    """
    loss = MMDLoss(num_kernels, kernel_multiplier, estimator)
    return _build_aligned(
        feature_extractor, label_head, loss, domain_loss_weight, optimizer,
        input_shape, name,
    )
