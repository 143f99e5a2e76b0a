"""Pixel-level (generative) domain adaptation: PixelDA trained with plain `fit`.

PixelDA (Bousmalis et al., CVPR 2017, https://arxiv.org/abs/1612.05424)
adapts in pixel space instead of feature space. A generator `G(x_s, z)`
turns each labelled source image into a target-style image; an image
discriminator `D` tells generated images from real target images; a task
classifier `T` learns the labels on the generated images (and on the source
images, as the paper does). Where the domains differ in appearance (colour,
texture, contrast polarity), `G` can learn the mapping that marginal feature
alignment (DANN, CORAL, MMD) cannot.

The game, with `l = D(image)` logits and `s = softplus`:

```python
L_D = mean_target(s(-D(x_t))) + mean_source(s(D(G(x_s))))       # D minimises
L_G = mean_source(s(-D(G(x_s))))            # G minimises (non-saturating)
L_T = CE(T(G(x_s)), y_s) + CE(T(x_s), y_s)  # T and G minimise
L_C = pairwise_mse(G(x_s), x_s)             # G minimises (content)
total = L_D + adversarial_weight * L_G + L_T + content_weight * L_C
```

One `keras.optimizers` step on `total` is one simultaneous move of every
player, because each player only receives the gradient of its own loss:
`D` sees the generated images through `stop_gradient`, and `G`'s adversarial
term reaches `D`'s weights twice with opposite signs (once through
`D(G(x_s))`, once subtracted through `D(stop_gradient(G(x_s)))`), so `D`'s
net gradient from it is exactly zero while `G` receives the non-saturating
gradient. All of this is `keras.ops` arithmetic in `compute_loss` (the
public Keras hook every backend's `train_step` calls), so the same code
trains on TensorFlow, JAX and PyTorch with plain `model.fit`.
"""

import keras
import numpy as np
from keras import ops

from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.datasets.paired import PairedArrays
from keras_transfer.heads import check_num_classes
from keras_transfer.models.compile import compile_args

_CONTENT_LOSSES = ("pairwise_mse", "mse")


def _check_pixel_range(pixel_range):
    try:
        low, high = (float(v) for v in pixel_range)
        ok = np.isfinite([low, high]).all() and high > low
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "Invalid value received for argument `pixel_range`. Expected a "
            "pair `(low, high)` of finite numbers with low < high, e.g. "
            f"`(0, 255)`. Received: pixel_range={pixel_range!r}"
        )
    return low, high


def _to_unit_range(pixel_range, name):
    """A `Rescaling` layer from `pixel_range` to [-1, 1]."""
    low, high = pixel_range
    return keras.layers.Rescaling(
        2.0 / (high - low), offset=-1.0 - 2.0 * low / (high - low), name=name
    )


def _from_unit_range(pixel_range, name):
    """A `Rescaling` layer from [-1, 1] to `pixel_range`."""
    low, high = pixel_range
    return keras.layers.Rescaling(
        (high - low) / 2.0, offset=(high + low) / 2.0, name=name
    )


def _check_image_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape)
    ):
        raise ValueError(
            "Invalid value received for argument `input_shape`. Expected "
            "`(height, width, channels)` of positive integers. Received: "
            f"input_shape={input_shape!r}"
        )
    return tuple(int(d) for d in shape)


class _SavedSeedLayer(keras.layers.Layer):
    """A weightless random layer whose seed state is saved with the model.

    Keras saves a layer's weights but not its `SeedGenerator` state, so a
    run resumed by `keras.callbacks.BackupAndRestore` would replay the noise
    of its first epoch. These layers store the state as their one variable.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def save_own_variables(self, store):
        store["seed_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        if "seed_state" in store.keys():  # absent from files of other versions
            self.seed_generator.state.assign(store["seed_state"])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_transfer")
class UniformNoise(_SavedSeedLayer):
    """Draws a fresh noise vector `z ~ U(-1, 1)` for every row of its input.

    The generator's latent input: `G(x, z)` samples a different target-style
    rendering of the same source image each call. The noise comes from the
    layer's own `keras.random.SeedGenerator`, so it is reproducible under
    `keras.utils.set_random_seed`, advances inside compiled train steps on
    every backend, and its state is saved with the model (a resumed run
    draws what the uninterrupted one would have).

    Args:
        units: Integer >= 1. Noise dimensions. Defaults to `10` (the paper).
        seed: Optional integer seed.

    Call arguments:
        inputs: A tensor whose first axis is the batch; only its shape is
            used.

    Example:

    ```python
    images = keras.Input((16, 16, 3))
    z = keras_transfer.adaptation.UniformNoise(10)(images)  # (batch, 10)
    ```
    """

    def __init__(self, units=10, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.units = check_int("units", units, minimum=1)

    def call(self, inputs):
        shape = (ops.shape(inputs)[0], self.units)
        return keras.random.uniform(
            shape, minval=-1.0, maxval=1.0, seed=self.seed_generator,
            dtype=self.compute_dtype,
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _ImageNoise(_SavedSeedLayer):
    """Adds Gaussian noise of a fixed standard deviation while training."""

    def __init__(self, stddev, **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev

    def call(self, images, training=False):
        if not (training and self.stddev):
            return images
        return images + keras.random.normal(
            ops.shape(images), stddev=self.stddev, seed=self.seed_generator,
            dtype=images.dtype,
        )


def pixelda_generator(
    input_shape,
    pixel_range=(0, 255),
    noise_dim=10,
    filters=16,
    residual_blocks=2,
    name="generator",
):
    """The PixelDA generator: `G(x, z)` -> an image in the input's pixel range.

    ```python
    h = concat(to_unit(x), reshape(Dense(H * W, relu)(z)))  # noise as a channel
    h = relu(conv3x3(h))
    for _ in range(residual_blocks):
        h = h + conv3x3(relu(conv3x3(h)))
    G = from_unit(tanh(conv1x1(h)))  # back to pixel_range
    ```

    As in the paper (6 blocks of 64 filters at 28 px there), but smaller by
    default (sized for 16-32 px images, where it was measured) and without
    batch normalisation: the adaptation model applies it to whole mixed
    batches, and batch statistics would couple the rows.

    Args:
        input_shape: Tuple `(height, width, channels)`.
        pixel_range: Pair `(low, high)`: the pixel range of the input images,
            and of the generated ones. Defaults to `(0, 255)` (raw images).
        noise_dim: Integer >= 1. Size of `z ~ U(-1, 1)`. Defaults to `10`.
        filters: Integer >= 1. Width of every conv. Defaults to `16`.
        residual_blocks: Integer >= 0. Defaults to `2`.
        name: String. Model name.

    Returns:
        A `keras.Model` from images to generated images of the same shape,
        drawing its own noise (`UniformNoise`) at every call.
    """
    input_shape = _check_image_shape(input_shape)
    pixel_range = _check_pixel_range(pixel_range)
    check_int("noise_dim", noise_dim, minimum=1)
    check_int("filters", filters, minimum=1)
    check_int("residual_blocks", residual_blocks, minimum=0)
    height, width, channels = input_shape
    images = keras.Input(input_shape, name="images")
    x = _to_unit_range(pixel_range, "to_unit_range")(images)
    z = UniformNoise(noise_dim, name="noise")(images)
    z = keras.layers.Dense(height * width, activation="relu", name="noise_projection")(z)
    z = keras.layers.Reshape((height, width, 1), name="noise_channel")(z)
    h = keras.layers.Concatenate(name="image_and_noise")([x, z])
    h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="stem")(h)
    for block in range(residual_blocks):
        r = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"block{block}_conv1"
        )(h)
        r = keras.layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv2")(r)
        h = keras.layers.Add(name=f"block{block}_add")([h, r])
    out = keras.layers.Conv2D(channels, 1, activation="tanh", name="to_image")(h)
    out = _from_unit_range(pixel_range, "to_pixel_range")(out)
    return keras.Model(images, out, name=name)


def pixelda_discriminator(
    input_shape, pixel_range=(0, 255), filters=(32, 64, 128), name="discriminator"
):
    """The PixelDA image discriminator: image -> one "real target" logit.

    Strided 3x3 convs with LeakyReLU(0.2) (DCGAN), then one dense logit. It
    has no dropout and no batch statistics on purpose: `PixelDAModel` gives
    the generator its gradient through a second pass over the same images,
    which must compute the same logits (see the module docstring).

    Args:
        input_shape: Tuple `(height, width, channels)`.
        pixel_range: Pair `(low, high)` of the images. Defaults to `(0, 255)`.
        filters: Tuple of integers >= 1, one stride-2 conv each. Defaults to
            `(32, 64, 128)`.
        name: String. Model name.

    Returns:
        A `keras.Model` from images to logits of shape `(batch, 1)`.
    """
    input_shape = _check_image_shape(input_shape)
    pixel_range = _check_pixel_range(pixel_range)
    if not isinstance(filters, (tuple, list)) or not filters or any(
        isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters
    ):
        raise ValueError(
            "Invalid value received for argument `filters`. Expected a "
            f"non-empty tuple of positive integers. Received: filters={filters!r}"
        )
    images = keras.Input(input_shape, name="images")
    h = _to_unit_range(pixel_range, "to_unit_range")(images)
    for index, width in enumerate(filters):
        h = keras.layers.Conv2D(width, 3, strides=2, padding="same", name=f"conv{index}")(h)
        h = keras.layers.LeakyReLU(0.2, name=f"leaky_relu{index}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    logit = keras.layers.Dense(1, name="logit")(h)
    return keras.Model(images, logit, name=name)


def pixelda_classifier(input_shape, num_classes, pixel_range=(0, 255), name="classifier"):
    """A small task classifier on raw images: conv 32-48, dense 128 -> logits.

    The default `T` of `build_pixelda`; any `keras.Model` from images to
    `num_classes` logits can take its place.

    Args:
        input_shape: Tuple `(height, width, channels)`.
        num_classes: Integer >= 1.
        pixel_range: Pair `(low, high)` of the images. Defaults to `(0, 255)`.
        name: String. Model name.

    Returns:
        A `keras.Model` from images to logits of shape `(batch, num_classes)`.
    """
    input_shape = _check_image_shape(input_shape)
    check_num_classes(num_classes)
    pixel_range = _check_pixel_range(pixel_range)
    images = keras.Input(input_shape, name="images")
    h = _to_unit_range(pixel_range, "to_unit_range")(images)
    for index, width in enumerate((32, 48)):
        h = keras.layers.Conv2D(width, 5, padding="same", activation="relu", name=f"conv{index}")(h)
        h = keras.layers.MaxPooling2D(name=f"pool{index}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(128, activation="relu", name="dense")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(images, logits, name=name)


def _masked_mean(values, mask):
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def _per_image(values):
    return ops.mean(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_transfer")
class PixelDAModel(keras.Model):
    """PixelDA: generator, image discriminator and task classifier in one model.

    Build it with `keras_transfer.adaptation.build_pixelda` and train it with
    `model.fit(keras_transfer.datasets.paired_dataset(...))`. Each batch's
    `y["domain"]` (0 source, 1 target) tells source rows from target rows,
    whatever their order or proportion; target labels are never read.

    The losses (see the module docstring) are computed in `compute_loss`
    from the outputs of `call`; every player gets only the gradient of its
    own loss, so one optimizer step moves all three players at once.
    Logged metrics: `loss` (the total), `discriminator_loss`,
    `generator_loss` (non-saturating adversarial), `task_loss`,
    `content_loss`, `accuracy` (of `T` on the generated source images) and
    `discriminator_accuracy`.

    Args:
        generator: A `keras.Model` from images to images of the same shape
            and pixel range (e.g. `pixelda_generator`).
        discriminator: A `keras.Model` from images to one logit per image,
            deterministic in training mode (no dropout): its logits on the
            generated images are computed twice and must agree.
        task_classifier: A `keras.Model` from images to class logits.
        pixel_range: Pair `(low, high)` the three models take. Training
            batches are checked against it. Defaults to `(0, 255)`.
        adversarial_weight: Float >= 0. Weight of `L_G` for the generator.
            Defaults to `1.0`.
        content_weight: Float >= 0. Weight of `L_C`. Defaults to `0.0`.
        content_loss: `"pairwise_mse"` (the paper's mean pairwise squared
            error per image and channel, blind to a per-channel brightness
            shift) or `"mse"`. Both on images scaled to [-1, 1]. Defaults to
            `"pairwise_mse"`.
        instance_noise: Float >= 0. Standard deviation, in units of half the
            pixel range, of Gaussian noise added to every image the
            discriminator sees while training (it keeps `D` from winning
            outright on few images). Defaults to `0.1`.

    Reference:
        - [Bousmalis et al., 2017](https://arxiv.org/abs/1612.05424)
    """

    def __init__(
        self,
        generator,
        discriminator,
        task_classifier,
        pixel_range=(0, 255),
        adversarial_weight=1.0,
        content_weight=0.0,
        content_loss="pairwise_mse",
        instance_noise=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.task_classifier = task_classifier
        self.pixel_range = _check_pixel_range(pixel_range)
        self.adversarial_weight = float(
            check_number("adversarial_weight", adversarial_weight, minimum=0)
        )
        self.content_weight = float(
            check_number("content_weight", content_weight, minimum=0)
        )
        if content_loss not in _CONTENT_LOSSES:
            raise ValueError(
                "Invalid value received for argument `content_loss`. Expected "
                f"one of {list(_CONTENT_LOSSES)}. Received: "
                f"content_loss={content_loss!r}"
            )
        self.content_loss = content_loss
        self.instance_noise = float(
            check_number("instance_noise", instance_noise, minimum=0)
        )
        low, high = self.pixel_range
        self.image_noise = _ImageNoise(
            self.instance_noise * (high - low) / 2.0, name="instance_noise"
        )
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "discriminator_loss", "generator_loss", "task_loss",
                "content_loss", "accuracy", "discriminator_accuracy",
            )
        }
        self.image_shape = _static_shape(generator, "input_shape", "generator")[1:]
        self.build((None,) + self.image_shape)

    def build(self, input_shape):
        # The three players are built models; the noise layers have no weights.
        self.built = True

    @property
    def num_classes(self):
        """The number of classes: the task classifier's outputs."""
        return int(self.task_classifier.output_shape[-1])

    @property
    def classifier(self):
        """The task classifier `T` (images -> logits), compiled for `evaluate`.

        Each access returns a new `keras.Model` wrapping the trained `T`
        (no generator, no discriminator), compiled with sparse
        categorical cross-entropy from logits and accuracy, ready for
        `evaluate`, `predict` and `keras_transfer.export`.
        """
        images = keras.Input(self.image_shape, name="images")
        model = keras.Model(
            images, self.task_classifier(images), name=f"{self.name}_classifier"
        )
        model.compile(**compile_args("adam"))
        return model

    def call(self, inputs, training=False):
        images = ops.cast(inputs, self.compute_dtype)
        generated = self.generator(images, training=training)
        seen_real = self.image_noise(images, training=training)
        seen_generated = self.image_noise(generated, training=training)
        return {
            "generated": generated,
            "label": self.task_classifier(images, training=training),
            "generated_label": self.task_classifier(generated, training=training),
            "real_logit": self.discriminator(seen_real, training=training),
            # D's own view: no gradient reaches the generator through it.
            "generated_logit": self.discriminator(
                ops.stop_gradient(seen_generated), training=training
            ),
            # G's view: the same logits, differentiable in the images.
            "generator_logit": self.discriminator(seen_generated, training=training),
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        _check_targets(y, "y")
        target = ops.reshape(ops.cast(y["domain"], "float32"), (-1,))
        source = 1.0 - target
        labels = ops.reshape(y["label"], (-1,))

        def logits(name):
            return ops.reshape(ops.cast(y_pred[name], "float32"), (-1,))

        real, generated, generator_view = (
            logits("real_logit"), logits("generated_logit"), logits("generator_logit")
        )
        discriminator_loss = _masked_mean(
            ops.softplus(-real), target
        ) + _masked_mean(ops.softplus(generated), source)
        generator_loss = _masked_mean(ops.softplus(-generator_view), source)
        # The same value through D's own view: subtracting it removes the
        # generator term's gradient on D's weights (the two views compute the
        # same logits) and leaves the non-saturating gradient on G.
        generator_loss_on_critic = _masked_mean(ops.softplus(-generated), source)
        adversarial_term = (
            generator_loss
            - generator_loss_on_critic
            + ops.stop_gradient(generator_loss_on_critic)
        )

        def cross_entropy(name):
            return keras.losses.sparse_categorical_crossentropy(
                labels, ops.cast(y_pred[name], "float32"), from_logits=True
            )

        task_loss = _masked_mean(cross_entropy("generated_label"), source) + _masked_mean(
            cross_entropy("label"), source
        )
        content_loss = _masked_mean(
            self._content(x, y_pred["generated"]), source
        )
        total = (
            discriminator_loss
            + self.adversarial_weight * adversarial_term
            + task_loss
            + self.content_weight * content_loss
        )
        accuracy = _masked_mean(
            ops.cast(
                ops.equal(
                    ops.argmax(y_pred["generated_label"], axis=-1),
                    ops.cast(labels, "int32"),
                ),
                "float32",
            ),
            source,
        )
        discriminator_accuracy = _masked_mean(
            ops.cast(real > 0, "float32"), target
        ) / 2.0 + _masked_mean(ops.cast(generated < 0, "float32"), source) / 2.0
        for name, value in (
            ("discriminator_loss", discriminator_loss),
            ("generator_loss", generator_loss),
            ("task_loss", task_loss),
            ("content_loss", content_loss),
            ("accuracy", accuracy),
            ("discriminator_accuracy", discriminator_accuracy),
        ):
            self.trackers[name].update_state(value)
        return total

    def _content(self, images, generated):
        """Per-row content loss between source images and their generated versions."""
        low, high = self.pixel_range
        scale = 2.0 / (high - low)
        difference = (
            ops.cast(generated, "float32") - ops.cast(images, "float32")
        ) * scale
        if self.content_loss == "mse":
            return _per_image(ops.square(difference))
        # Mean pairwise squared error: the variance of the difference over
        # the pixels of each channel, so a per-channel offset costs nothing.
        mean = ops.mean(difference, axis=(1, 2), keepdims=True)
        return _per_image(ops.square(difference - mean))

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, after checking the training data.

        The batches must come from `keras_transfer.datasets.paired_dataset`
        (a `y` dict with `"label"` and `"domain"`), their images must lie in
        `pixel_range`, and their source labels in `[0, num_classes)`. Array
        inputs (`PairedArrays`) are checked whole; other inputs on their
        first batch.
        """
        if isinstance(x, PairedArrays):
            # Every row: a bad label in a later batch must not train silently.
            check_pixels(x.x_source, self.pixel_range)
            check_pixels(x.x_target, self.pixel_range)
            self._check_labels(x.y_source)
        else:
            batch = _first_batch(x, y)
            if batch is not None:
                self._check_batch(*batch)
        return super().fit(x, y, *args, **kwargs)

    def _check_batch(self, images, y):
        _check_targets(y, "x")
        check_pixels(images, self.pixel_range)
        domain = np.asarray(y["domain"]).reshape(-1)
        self._check_labels(np.asarray(y["label"]).reshape(-1)[domain == 0])

    def _check_labels(self, labels):
        labels = np.asarray(labels).reshape(-1)
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            raise ValueError(
                "Invalid value received for argument `x`: a source label is "
                f"outside [0, {self.num_classes}), the classifier's "
                f"{self.num_classes} classes. Received: label={labels[bad][0]}"
            )

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "task_classifier": keras.saving.serialize_keras_object(self.task_classifier),
            "pixel_range": list(self.pixel_range),
            "adversarial_weight": self.adversarial_weight,
            "content_weight": self.content_weight,
            "content_loss": self.content_loss,
            "instance_noise": self.instance_noise,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "task_classifier"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _check_targets(y, argument):
    if not isinstance(y, dict) or "label" not in y or "domain" not in y:
        raise ValueError(
            f"Invalid value received for argument `{argument}`. PixelDAModel "
            "trains on `keras_transfer.datasets.paired_dataset(...)` batches, "
            "whose targets are a dict with 'label' and 'domain'. Received: "
            f"targets of type {type(y).__name__}"
        )


def _first_batch(x, y):
    """`(images, y)` of the first batch `fit` will see, when cheap to read."""
    if isinstance(x, keras.utils.PyDataset):
        if len(x) == 0:
            return None
        batch = x[0]
    elif hasattr(x, "take") and hasattr(x, "element_spec"):  # tf.data
        batch = next(iter(x.take(1)), None)
        if batch is None:
            return None
        batch = keras.tree.map_structure(np.asarray, batch)
    elif isinstance(x, np.ndarray):
        batch = (x, y)
    else:
        return None
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        return None
    return batch[0], batch[1]


def check_pixels(images, pixel_range):
    """Raise a `ValueError` unless `images` look like images in `pixel_range`.

    Catches values outside the range, and images squeezed into a small
    corner of it, such as floats in [0, 1] given to a model that takes raw
    0..255 pixels.

    Args:
        images: Array of images.
        pixel_range: Pair `(low, high)` the model expects.

    Returns:
        `images` as a numpy array.
    """
    low, high = _check_pixel_range(pixel_range)
    images = np.asarray(images)
    if images.size == 0:
        raise ValueError(
            "Invalid value received for argument `images`. Expected at least "
            f"one image. Received: images with shape {images.shape}"
        )
    found_low, found_high = float(images.min()), float(images.max())
    span = high - low
    tolerance = 1e-3 * span
    if found_low < low - tolerance or found_high > high + tolerance:
        raise ValueError(
            "Invalid value received for argument `images`: pixel values lie in "
            f"[{found_low:g}, {found_high:g}], outside the model's pixel_range "
            f"[{low:g}, {high:g}]. Rescale the images, or build the model with "
            f"`pixel_range=({found_low:g}, {found_high:g})`-like bounds."
        )
    if found_high - found_low <= span / 100.0:
        raise ValueError(
            "Invalid value received for argument `images`: pixel values span "
            f"only [{found_low:g}, {found_high:g}], under 1% of the model's "
            f"pixel_range [{low:g}, {high:g}] (floats in [0, 1] given to a "
            "model that takes raw 0..255 pixels?). Pass images in "
            "pixel_range, or build the model with the range your images use."
        )
    return images


def build_pixelda(
    input_shape,
    num_classes,
    classifier=None,
    generator=None,
    discriminator=None,
    pixel_range=(0, 255),
    adversarial_weight=1.0,
    content_weight=0.0,
    content_loss="pairwise_mse",
    instance_noise=0.1,
    optimizer=None,
    name="pixelda",
):
    """Pixel-level domain adaptation (PixelDA), trained with plain `fit`.

    A generator maps labelled source images to the target's style, an image
    discriminator tells them from real target images, and the task
    classifier learns the source labels on the generated (and the source)
    images. See `keras_transfer.adaptation.PixelDAModel` for the losses.

    Use it when the domains differ in *appearance* — colour, texture,
    background, contrast polarity (digits -> MNIST-M-style photos) — and the
    images are small enough for a generator: the mapping lives in pixel
    space, where a residual conv net can learn it from a few hundred
    unlabelled target images. Geometric shifts (rotation) are not what it
    models.

    Args:
        input_shape: Tuple `(height, width, channels)` of the images (both
            domains).
        num_classes: Integer >= 1. Number of classes; must match the
            classifier's outputs.
        classifier: Optional `keras.Model` from images in `pixel_range` to
            `num_classes` logits: the task classifier `T`, e.g. the model you
            would train source-only. Defaults to `pixelda_classifier`.
        generator: Optional generator model. Defaults to
            `pixelda_generator(input_shape, pixel_range)`.
        discriminator: Optional discriminator model (deterministic in
            training mode). Defaults to `pixelda_discriminator`.
        pixel_range: Pair `(low, high)` of the input pixels, which the
            generated images share. Defaults to `(0, 255)` (raw images, as
            `keras_transfer.datasets` loads them).
        adversarial_weight: Float >= 0. Weight of the generator's adversarial
            loss. Defaults to `1.0` (the paper's reference code).
        content_weight: Float >= 0. Weight of the content-similarity loss
            between `G(x_s)` and `x_s`. Defaults to `0.0`, as the paper for
            MNIST -> MNIST-M: a content loss resists the polarity flips and
            colour changes the generator must make there; raise it when the
            generator starts to change the content.
        content_loss: `"pairwise_mse"` or `"mse"`. Defaults to
            `"pairwise_mse"` (the paper's).
        instance_noise: Float >= 0. Noise on the discriminator's inputs, in
            units of half the pixel range. Defaults to `0.1`.
        optimizer: Optimizer for `compile`. Defaults to
            `keras.optimizers.Adam(1e-3, beta_1=0.5)` (the paper's reference
            code).
        name: String. Model name.

    Returns:
        A compiled `PixelDAModel`; `.classifier` is the trained images ->
        logits model, `.generator` the source -> target-style generator.

    Example:

    ```python
    x_s, y_s = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_t, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    model = keras_transfer.adaptation.build_pixelda((16, 16, 3), num_classes=10)
    model.fit(keras_transfer.datasets.paired_dataset(
        (x_s[:32], y_s[:32]), x_t[:32], batch_size=16, num_classes=10),
        epochs=1)  # all rows, batch_size=64, epochs=100 in real use
    model.classifier.evaluate(x_test, y_test)
    keras_transfer.adaptation.plot_translations(model, x_s[:4], "translations.png")
    ```

    Reference:
        - [Bousmalis et al., 2017](https://arxiv.org/abs/1612.05424)
    """
    input_shape = _check_image_shape(input_shape)
    check_num_classes(num_classes)
    pixel_range = _check_pixel_range(pixel_range)
    classifier = classifier or pixelda_classifier(input_shape, num_classes, pixel_range)
    generator = generator or pixelda_generator(input_shape, pixel_range)
    discriminator = discriminator or pixelda_discriminator(input_shape, pixel_range)
    for argument, model, want in (
        ("classifier", classifier, input_shape),
        ("generator", generator, input_shape),
        ("discriminator", discriminator, input_shape),
    ):
        got = _static_shape(model, "input_shape", argument)
        if got[1:] != want:
            raise ValueError(
                f"Invalid value received for argument `{argument}`. Expected a "
                f"model taking images of shape {want} (`input_shape`). "
                f"Received: {argument} with input shape {got[1:]}"
            )
    outputs = _static_shape(classifier, "output_shape", "classifier")[-1]
    if outputs != num_classes:
        raise ValueError(
            "Invalid value received for argument `num_classes`: the classifier "
            f"has {outputs} outputs. Expected num_classes to match them. "
            f"Received: num_classes={num_classes}"
        )
    if _static_shape(generator, "output_shape", "generator")[1:] != input_shape:
        raise ValueError(
            "Invalid value received for argument `generator`. Expected a model "
            f"returning images of shape {input_shape}. Received: output shape "
            f"{generator.output_shape[1:]}"
        )
    if _static_shape(discriminator, "output_shape", "discriminator")[1:] != (1,):
        raise ValueError(
            "Invalid value received for argument `discriminator`. Expected a "
            "model returning one logit per image, shape (batch, 1). "
            f"Received: output shape {discriminator.output_shape}"
        )
    model = PixelDAModel(
        generator,
        discriminator,
        classifier,
        pixel_range=pixel_range,
        adversarial_weight=adversarial_weight,
        content_weight=content_weight,
        content_loss=content_loss,
        instance_noise=instance_noise,
        name=name,
    )
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-3, beta_1=0.5)
    )
    return model


def _static_shape(model, attribute, argument):
    try:
        shape = getattr(model, attribute)
    except (AttributeError, ValueError):
        shape = None
    if not isinstance(shape, tuple):
        raise ValueError(
            f"Invalid value received for argument `{argument}`. Expected a "
            f"built `keras.Model` with one input and one output. Received: "
            f"{argument}={model!r}"
        )
    return tuple(shape)


def plot_translations(model, x_source, path, samples=2, max_images=8):
    """Write a PNG grid: source images over their generated target-style versions.

    Row 1 shows up to `max_images` source images; each further row shows
    one generated version of each (a new noise draw per row).

    Args:
        model: A `PixelDAModel` (or its `.generator`, with
            `pixel_range=(0, 255)`).
        x_source: Array of source images in the model's pixel range.
        path: Where to write the PNG.
        samples: Integer >= 1. Generated rows. Defaults to `2`.
        max_images: Integer >= 1. Columns. Defaults to `8`.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_int("samples", samples, minimum=1)
    check_int("max_images", max_images, minimum=1)
    generator = getattr(model, "generator", model)
    pixel_range = getattr(model, "pixel_range", (0, 255))
    images = check_pixels(np.asarray(x_source)[:max_images], pixel_range)
    rows = [images.astype("float32")] + [
        ops.convert_to_numpy(generator(images.astype("float32"), training=False))
        for _ in range(samples)
    ]
    low, high = pixel_range
    columns = len(images)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.2 * columns, 1.25 * len(rows)), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(columns):
            image = np.clip((row[c] - low) / (high - low), 0.0, 1.0)
            if image.shape[-1] == 1:
                image = image[..., 0]
            axis = axes[r][c]
            axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[r][0].set_ylabel("source" if r == 0 else f"G(x, z{r})", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
