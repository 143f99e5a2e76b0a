"""Target-aware self-training with plain `model.fit`: entropy, MCC, FixMatch.

Each builder returns an `AdaptationModel` like `build_dann`: outputs
`{"label": logits, "domain": ...}`, trained on
`keras_transfer.datasets.paired_dataset` batches. The `"domain"` output
carries what the target loss reads, and the loss sees only the target rows
(the domain indicator is its `y_true`):

- `build_entropy_minimization`: `"domain"` = the logits, loss
  `keras_transfer.losses.EntropyLoss` (Grandvalet & Bengio 2004).
- `build_mcc`: `"domain"` = the logits, loss `keras_transfer.losses.MCCLoss`
  (minimum class confusion, Jin et al. 2020, https://arxiv.org/abs/1912.03699).
- `build_fixmatch`: `"domain"` = the logits of the input next to those of a
  strongly augmented copy, loss `keras_transfer.losses.FixMatchLoss`
  (confident pseudo-labels with `stop_gradient`, Sohn et al. 2020,
  https://arxiv.org/abs/2001.07685). Pseudo-labels are made in the graph,
  per batch: no labelling pass, no callback.

The feature extractor and head can be any Keras layers or models; to
self-train an existing classifier `model`, pass
`build_mcc(model, keras.layers.Identity())`.
"""

import keras

from keras_transfer._validation import check_number
from keras_transfer.adaptation.alignment import AdaptationModel
from keras_transfer.adaptation.alignment import compile_adaptation
from keras_transfer.adaptation.alignment import model_inputs
from keras_transfer.losses.entropy import EntropyLoss
from keras_transfer.losses.fixmatch import FixMatchLoss
from keras_transfer.losses.mcc import MCCLoss


def _build_on_logits(
    feature_extractor, label_head, target_loss, weight, optimizer, input_shape, name
):
    inputs, features = model_inputs(feature_extractor, input_shape)
    logits = label_head(features)
    model = AdaptationModel(
        inputs,
        {"label": logits, "domain": keras.layers.Identity(name="target_logits")(logits)},
        name=name,
    )
    return compile_adaptation(model, label_head, target_loss, weight, optimizer, [])


def build_entropy_minimization(
    feature_extractor,
    label_head,
    domain_loss_weight=0.1,
    optimizer=None,
    input_shape=None,
    name="entropy_minimization",
):
    """Source cross-entropy + entropy of the target predictions.

    ```python
    loss = CE(label_head(f(x)), y)[source rows]
           + domain_loss_weight * mean(H(softmax(label_head(f(x)))))[target rows]
    ```

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        domain_loss_weight: Float >= 0. Weight of the entropy term. Defaults
            to `0.1`.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `keras_transfer.adaptation.AdaptationModel`.

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3))  # or a pretrained backbone
    head = keras.layers.Dense(10)                                 # class logits
    model = keras_transfer.adaptation.build_entropy_minimization(features, head)
    model.fit(keras_transfer.adaptation.paired_dataset(
        source=(x_source[:64], y_source[:64]), target=x_target[:64], batch_size=32),
        epochs=1)  # epochs=10+ on the full data in real use
    loss, accuracy = model.classifier.evaluate(x_test, y_test)  # target accuracy
    ```

    Reference:
        - [Grandvalet & Bengio, 2004](https://papers.nips.cc/paper/2740-semi-supervised-learning-by-entropy-minimization)
    """
    return _build_on_logits(
        feature_extractor, label_head, EntropyLoss(), domain_loss_weight,
        optimizer, input_shape, name,
    )


def build_mcc(
    feature_extractor,
    label_head,
    domain_loss_weight=1.0,
    temperature=2.5,
    optimizer=None,
    input_shape=None,
    name="mcc",
):
    """Source cross-entropy + minimum class confusion on the target rows.

    ```python
    loss = CE(label_head(f(x)), y)[source rows]
           + domain_loss_weight * MCC(label_head(f(x)), temperature)[target rows]
    ```

    See `keras_transfer.losses.mcc_loss` for the MCC formula.

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        domain_loss_weight: Float >= 0. Weight of the MCC term. Defaults to
            `1.0` (the paper's).
        temperature: Float > 0. Softmax temperature. Defaults to `2.5`.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `keras_transfer.adaptation.AdaptationModel`.

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3))  # or a pretrained backbone
    head = keras.layers.Dense(10)                                 # class logits
    model = keras_transfer.adaptation.build_mcc(features, head)
    model.fit(keras_transfer.adaptation.paired_dataset(
        source=(x_source[:64], y_source[:64]), target=x_target[:64], batch_size=32),
        epochs=1)  # epochs=10+ on the full data in real use
    loss, accuracy = model.classifier.evaluate(x_test, y_test)  # target accuracy
    ```

    Reference:
        - [Jin et al., 2020](https://arxiv.org/abs/1912.03699)
    """
    return _build_on_logits(
        feature_extractor, label_head, MCCLoss(temperature), domain_loss_weight,
        optimizer, input_shape, name,
    )


def default_strong_augmentation(value_range=(0, 255), name="strong_augmentation"):
    """FixMatch's strong view for images: geometry, contrast and a cutout.

    Random translation (12.5 %), rotation (up to 30 degrees), zoom (15 %),
    contrast (factor 0.5) and erasing of one patch. No flips: they change
    the class of digits and text. Active only when `training=True`.

    Args:
        value_range: Tuple `(low, high)` of the input pixel values. Defaults
            to `(0, 255)`.
        name: String. Model name.

    Returns:
        A `keras.Sequential` of Keras random image layers.
    """
    low, high = value_range
    check_number("value_range", high, above=low)
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(0.125, 0.125, fill_mode="constant"),
            keras.layers.RandomRotation(30 / 360, fill_mode="constant"),
            keras.layers.RandomZoom(0.15, fill_mode="constant"),
            keras.layers.RandomContrast(0.5, value_range=(low, high)),
            keras.layers.RandomErasing(factor=0.5, scale=(0.05, 0.2), value_range=(low, high)),
        ],
        name=name,
    )


def build_fixmatch(
    feature_extractor,
    label_head,
    augmentation=None,
    threshold=0.95,
    domain_loss_weight=1.0,
    optimizer=None,
    input_shape=None,
    name="fixmatch",
):
    """Source cross-entropy + FixMatch pseudo-label consistency on the target rows.

    ```python
    weak = label_head(f(x))                      # also the "label" output
    strong = label_head(f(augmentation(x)))
    loss = CE(weak, y)[source rows]
           + domain_loss_weight * FixMatch(weak, strong, threshold)[target rows]
    ```

    The pseudo-label is `argmax(softmax(stop_gradient(weak)))`, used where
    its probability reaches `threshold` (`keras_transfer.losses.fixmatch_loss`).
    The weak view is the input itself (no flips or shifts: the source
    classifier sees the same images at test time).

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        augmentation: A Keras layer or model making the strong view, active
            in training. Defaults to
            `keras_transfer.adaptation.default_strong_augmentation()` (pixel
            values in `[0, 255]`).
        threshold: Float in `[0, 1]`. Confidence a pseudo-label needs.
            Defaults to `0.95`.
        domain_loss_weight: Float >= 0. Weight of the consistency term.
            Defaults to `1.0`.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `keras_transfer.adaptation.AdaptationModel`.

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3))  # or a pretrained backbone
    head = keras.layers.Dense(10)                                 # class logits
    model = keras_transfer.adaptation.build_fixmatch(
        features, head,
        # Omit for the default strong view (translation, rotation, zoom,
        # contrast, erasing); a contrast-only view keeps this example fast.
        augmentation=keras.layers.RandomContrast(0.5, value_range=(0, 255)))
    model.fit(keras_transfer.adaptation.paired_dataset(
        source=(x_source[:64], y_source[:64]), target=x_target[:64], batch_size=32),
        epochs=1)  # epochs=10+ on the full data in real use
    loss, accuracy = model.classifier.evaluate(x_test, y_test)  # target accuracy
    ```

    Reference:
        - [Sohn et al., 2020](https://arxiv.org/abs/2001.07685)
    """
    augmentation = augmentation or default_strong_augmentation()
    inputs, features = model_inputs(feature_extractor, input_shape)
    weak = label_head(features)
    strong = label_head(feature_extractor(augmentation(inputs)))
    model = AdaptationModel(
        inputs,
        {
            "label": weak,
            "domain": keras.layers.Concatenate(name="weak_strong_logits")([weak, strong]),
        },
        name=name,
    )
    return compile_adaptation(
        model, label_head, FixMatchLoss(threshold), domain_loss_weight, optimizer, []
    )
