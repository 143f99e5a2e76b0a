"""PixelDA (keras_transfer.adaptation.generative): tiny 16 px models, a few steps."""

import keras
import numpy as np
import pytest

import keras_transfer
from keras_transfer import adaptation
from keras_transfer import datasets

SHAPE = (16, 16, 3)
CLASSES = 3
once = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="backend-independent: tested on JAX"
)


def _images(n, seed, bright=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 120, (n,) + SHAPE)
    if bright:  # A target domain that looks different: brighter, one colour up.
        images = images + np.array([120, 60, 0])
    return images.astype("uint8")


def _data(n=8):
    """One fixed batch of 2n rows: n labelled source rows, n target rows."""
    x_source = _images(n, 0)
    y_source = np.arange(n) % CLASSES
    x_target = _images(n, 1, bright=True)
    return datasets.paired_dataset(
        (x_source, y_source), x_target, batch_size=2 * n, num_classes=CLASSES,
        shuffle=False,
    )


def _model(optimizer=None, **kwargs):
    """A tiny PixelDA: narrow generator, one-conv discriminator, small classifier."""
    kwargs.setdefault("instance_noise", 0.0)
    return adaptation.build_pixelda(
        SHAPE,
        CLASSES,
        classifier=keras.Sequential(
            [
                keras.Input(SHAPE),
                keras.layers.Rescaling(1 / 255),
                keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
                keras.layers.Flatten(),
                keras.layers.Dense(CLASSES),
            ],
            name="classifier",
        ),
        generator=adaptation.pixelda_generator(SHAPE, filters=8, residual_blocks=1),
        discriminator=adaptation.pixelda_discriminator(SHAPE, filters=(8,)),
        optimizer=optimizer,
        **kwargs,
    )


def _losses(model, data):
    """Each player's loss on the (one) batch of `data`, without compiling."""
    x, y, _ = data[0]
    model.reset_metrics()
    model.compute_loss(x, y, model(x, training=False), training=False)
    return {k: float(v) for k, v in model.get_metrics_result().items()}


def _weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.weights]


def _set(model, values):
    for variable, value in zip(model.weights, values):
        variable.assign(value)


def test_generator_output_shape_range_and_noise():
    generator = adaptation.pixelda_generator(SHAPE, filters=8, residual_blocks=1)
    images = _images(4, 0).astype("float32")
    first = keras.ops.convert_to_numpy(generator(images))
    second = keras.ops.convert_to_numpy(generator(images))
    assert first.shape == (4,) + SHAPE
    assert first.min() >= 0.0 and first.max() <= 255.0
    assert first.std() > 1.0  # Not a constant image.
    assert not np.allclose(first, second)  # A new z per call: a new rendering.

    unit = adaptation.pixelda_generator(SHAPE, pixel_range=(-1, 1), filters=8)
    out = keras.ops.convert_to_numpy(unit(images / 127.5 - 1))
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_one_step_moves_every_player_down_its_own_loss():
    """A training step is the game's phase: all three players move at once.

    On a fixed batch, each player's new weights lower its own loss when the
    other players are put back to their old weights: D's loss (real target
    vs generated), G's non-saturating adversarial loss, and T's task loss.
    """
    model = _model(keras.optimizers.SGD(0.05))
    data = _data()
    before = _weights(model)
    start = _losses(model, data)
    model.fit(data, epochs=3, verbose=0)  # three steps on the same batch
    after = _weights(model)

    def own_loss(player, metric):
        values = [
            new if any(v is w for w in player.weights) else old
            for v, old, new in zip(model.weights, before, after)
        ]
        _set(model, values)
        return _losses(model, data)[metric]

    assert own_loss(model.discriminator, "discriminator_loss") < start["discriminator_loss"] - 1e-3
    assert own_loss(model.generator, "generator_loss") < start["generator_loss"] - 1e-3
    assert own_loss(model.task_classifier, "task_loss") < start["task_loss"] - 1e-3
    for old, new, variable in zip(before, after, model.weights):
        if variable.trainable:
            assert not np.allclose(old, new), variable.path  # every player moved


def test_each_player_gets_only_its_own_gradient():
    """The adversarial weight changes G's step, never D's or T's."""
    steps, players = {}, {}
    for weight in (0.0, 5.0):
        keras.utils.set_random_seed(7)
        model = _model(keras.optimizers.SGD(0.05), adversarial_weight=weight)
        before = _weights(model)
        model.fit(_data(), epochs=1, verbose=0)
        steps[weight] = [new - old for old, new in zip(before, _weights(model))]
        players = {
            name: [
                i for i, v in enumerate(model.weights)
                if any(v is w for w in part.trainable_weights)
            ]
            for name, part in (
                ("discriminator", model.discriminator),
                ("task", model.task_classifier),
                ("generator", model.generator),
            )
        }
    for name in ("discriminator", "task"):
        for i in players[name]:
            np.testing.assert_allclose(steps[5.0][i], steps[0.0][i], atol=1e-6)
    assert any(
        not np.allclose(steps[5.0][i], steps[0.0][i], atol=1e-6)
        for i in players["generator"]
    )


def test_keras_round_trip_and_classifier_export(tmp_path):
    model = _model(content_weight=0.5, instance_noise=0.1)
    model.fit(_data(), epochs=1, verbose=0)
    path = tmp_path / "pixelda.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, adaptation.PixelDAModel)
    for key in ("pixel_range", "adversarial_weight", "content_weight", "content_loss", "instance_noise"):
        assert getattr(loaded, key) == getattr(model, key), key
    images = _images(5, 3).astype("float32")
    for part in ("generator", "discriminator", "task_classifier"):
        keras.utils.set_random_seed(11)  # the same noise in both generators
        want = keras.ops.convert_to_numpy(getattr(model, part)(images))
        keras.utils.set_random_seed(11)
        got = keras.ops.convert_to_numpy(getattr(loaded, part)(images))
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=part)
    classifier = loaded.classifier
    labels = np.arange(5) % 3
    accuracy = classifier.evaluate(images, labels, verbose=0, return_dict=True)["accuracy"]
    # The compiled classifier scores what its predictions say.
    predicted = np.argmax(keras.ops.convert_to_numpy(classifier.predict(images, verbose=0)), -1)
    assert accuracy == pytest.approx(np.mean(predicted == labels))
    if keras.backend.backend() == "torch":
        pytest.importorskip("onnxruntime")
    result = keras_transfer.export(classifier, tmp_path / "classifier", probe=images)
    assert result.max_abs_diff <= 1e-4


class _Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            raise RuntimeError("killed")


def test_backup_and_restore_resume_matches_uninterrupted_run(tmp_path):
    def fresh():
        keras.utils.set_random_seed(5)
        return _model(instance_noise=0.1)

    reference = fresh()
    reference.fit(_data(), epochs=2, verbose=0)

    backup = keras.callbacks.BackupAndRestore(str(tmp_path))
    with pytest.raises(RuntimeError, match="killed"):
        fresh().fit(_data(), epochs=2, verbose=0, callbacks=[backup, _Kill()])
    resumed = fresh()
    resumed.fit(_data(), epochs=2, verbose=0, callbacks=[backup])
    for got, want in zip(resumed.weights, reference.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
            atol=1e-5, err_msg=got.path,
        )
    for got, want in zip(resumed.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(want),
            atol=1e-5, err_msg=got.path,
        )


@once
def test_plot_translations_writes_a_grid(tmp_path):
    model = _model()
    path = adaptation.plot_translations(model, _images(4, 0), tmp_path / "grid.png", samples=2)
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    assert width > height > 0  # three rows of four images


@once
def test_bad_images_and_labels_are_refused_before_training():
    model = _model()
    x_source, y_source = _images(8, 0), np.arange(8) % CLASSES
    x_target = _images(8, 1)
    unit = datasets.paired_dataset((x_source / 255.0, y_source), x_target / 255.0, batch_size=8)
    with pytest.raises(ValueError, match=r"pixel_range \[0, 255\].*\[0, 1\]"):
        model.fit(unit, epochs=1, verbose=0)
    too_bright = datasets.paired_dataset(
        (x_source * 3.0, y_source), x_target * 3.0, batch_size=8
    )
    with pytest.raises(ValueError, match="outside the model's pixel_range"):
        model.fit(too_bright, epochs=1, verbose=0)
    late_bad_label = np.arange(8) % CLASSES
    late_bad_label[-1] = 3  # in the last row: not necessarily in the first batch
    four_classes = datasets.paired_dataset((x_source, late_bad_label), x_target, batch_size=8)
    with pytest.raises(ValueError, match=r"outside \[0, 3\).*label=3"):
        model.fit(four_classes, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="paired_dataset"):
        model.fit(x_source, y_source, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adaptation.plot_translations(model, x_source / 255.0, "unused.png")


@once
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"adversarial_weight": -1.0}, "adversarial_weight=-1.0"),
        ({"content_weight": -0.5}, "content_weight=-0.5"),
        ({"instance_noise": -0.1}, "instance_noise=-0.1"),
        ({"content_loss": "l1"}, "content_loss='l1'"),
        ({"pixel_range": (1, 0)}, r"pixel_range=\(1, 0\)"),
        ({"num_classes": 5}, "classifier has 3 outputs.*num_classes=5"),
        ({"input_shape": (16, 16)}, r"input_shape=\(16, 16\)"),
        ({"input_shape": (8, 8, 3)}, r"argument `classifier`.*\(8, 8, 3\)"),
    ],
)
def test_bad_builder_arguments(kwargs, match):
    args = {"input_shape": SHAPE, "num_classes": CLASSES}
    model_kwargs = {k: v for k, v in kwargs.items() if k not in args}
    args.update({k: v for k, v in kwargs.items() if k in args})
    classifier = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(CLASSES)]
    )
    with pytest.raises(ValueError, match=match):
        adaptation.build_pixelda(
            args["input_shape"], args["num_classes"], classifier=classifier, **model_kwargs
        )
