import json
import os
import tracemalloc

import keras
import numpy as np
import pytest

import keras_transfer
from keras_transfer import features as feature_cache
from keras_transfer.backbones import Backbone
from keras_transfer.backbones import BackboneInfo
from keras_transfer.heads import ClassificationHead
from keras_transfer.models import cnn_features
from keras_transfer.preprocessing import ImageNetPreprocessing

SIZE = 16


def _backbone(filters=(4, 8), seed=0):
    keras.utils.set_random_seed(seed)
    model = cnn_features((SIZE, SIZE, 3), filters)
    keras_transfer.freeze(model)
    return model


def _images(count=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (count, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 3, (count,))
    return x, y


def _expected(backbone, x):
    return keras.ops.convert_to_numpy(backbone(x, training=False))


def test_second_run_reuses_the_cache_and_one_changed_image_is_recomputed(tmp_path):
    backbone = _backbone()
    x, y = _images(40)
    first = feature_cache.extract(backbone, (x, y), cache_dir=tmp_path, batch_size=8)
    assert (first.computed_batches, first.reused_batches) == (5, 0)
    features, labels = first.arrays()
    np.testing.assert_allclose(features, _expected(backbone, x), atol=1e-5)
    np.testing.assert_array_equal(labels, y)

    again = feature_cache.extract(backbone, (x, y), cache_dir=tmp_path, batch_size=8)
    assert (again.computed_batches, again.reused_batches) == (0, 5)
    np.testing.assert_array_equal(again.arrays()[0], features)

    changed = x.copy()
    changed[13] = 255.0 - changed[13]  # One image, in the second batch.
    third = feature_cache.extract(backbone, (changed, y), cache_dir=tmp_path, batch_size=8)
    assert (third.computed_batches, third.reused_batches) == (1, 4)
    updated = third.arrays()[0]
    np.testing.assert_allclose(updated, _expected(backbone, changed), atol=1e-5)
    assert not np.allclose(updated[13], features[13])
    np.testing.assert_array_equal(np.delete(updated, 13, 0), np.delete(features, 13, 0))
    # Only the manifest and the listed shards remain: no temporary or stale files.
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    listed = {"manifest.json"} | {s["features"] for s in manifest["shards"]} | {s["labels"] for s in manifest["shards"]}
    assert set(os.listdir(tmp_path)) == listed


def test_changed_labels_are_taken_from_the_data_without_recomputing(tmp_path):
    backbone = _backbone()
    x, y = _images(16)
    feature_cache.extract(backbone, (x, y), cache_dir=tmp_path, batch_size=8)
    relabelled = feature_cache.extract(backbone, (x, (y + 1) % 3), cache_dir=tmp_path, batch_size=8)
    assert relabelled.computed_batches == 0
    np.testing.assert_array_equal(relabelled.arrays()[1], (y + 1) % 3)


def _preprocessed(mode, feature_model):
    info = BackboneInfo(name="cnn", source="test", modality="image", input_shape=(SIZE, SIZE, 3))
    return Backbone(feature_model, ImageNetPreprocessing(mode), info)


def test_a_cache_of_another_backbone_weights_or_preprocessing_is_refused(tmp_path):
    x, y = _images(8)
    backbone = _backbone()
    feature_cache.extract(backbone, (x, y), cache_dir=tmp_path / "a")
    with pytest.raises(ValueError, match=r"different backbone, weights \(backbone: cached features: \d+ layers, 456 parameters.*this run features: \d+ layers, 374 parameters"):
        feature_cache.extract(_backbone(filters=(4, 6)), (x, y), cache_dir=tmp_path / "a")
    with pytest.raises(ValueError, match=r"different weights \(weights: cached '[0-9a-f]+', this run '[0-9a-f]+'"):
        feature_cache.extract(_backbone(seed=1), (x, y), cache_dir=tmp_path / "a")

    feature_model = _backbone()
    feature_cache.extract(_preprocessed("caffe", feature_model), (x, y), cache_dir=tmp_path / "b")
    with pytest.raises(ValueError, match=r'different preprocessing.*"caffe".*this run.*"tf"') as error:
        feature_cache.extract(_preprocessed("tf", feature_model), (x, y), cache_dir=tmp_path / "b")
    assert "weights" not in str(error.value).split("(")[0]


def test_a_folder_that_is_not_a_cache_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no feature cache"):
        feature_cache.extract(_backbone(), _images(8), cache_dir=tmp_path)
    assert os.listdir(tmp_path) == ["notes.txt"]


class _Stream(keras.utils.PyDataset):
    """Batches made on the fly: the inputs are never all in memory."""

    def __init__(self, batches, batch_size, features):
        super().__init__()
        self.batches, self.batch_size, self.features = batches, batch_size, features

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        x = rng.normal(size=(self.batch_size, self.features)).astype("float32")
        return x, rng.integers(0, 2, self.batch_size)


def _peak_bytes(backbone, stream, folder):
    """Peak traced memory of extracting `stream` to disk, and added by one pass over its batches."""
    tracemalloc.start()
    try:
        cached = feature_cache.extract(backbone, stream, cache_dir=folder, shard_bytes=2**17)
        extract_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        held = tracemalloc.get_traced_memory()[0]
        rows = sum(len(features) for features, _ in cached.dataset(batch_size=100))
        read_peak = tracemalloc.get_traced_memory()[1] - held
    finally:
        tracemalloc.stop()
    assert rows == cached.num_examples == len(stream) * stream.batch_size
    assert len(cached.shards) == rows * stream.features * 4 // 2**17
    return extract_peak, read_peak


def test_a_dataset_larger_than_the_memory_cap_extracts_and_trains_in_shards(tmp_path):
    cap = 4 * 2**20
    width, batch = 512, 64  # 128 KiB of features per batch
    inputs = keras.Input((width,))
    backbone = keras.Model(inputs, keras.layers.Dense(width, trainable=False)(inputs))
    feature_cache.extract(backbone, _Stream(2, batch, width))  # Compile outside the measurement.
    quarter = _peak_bytes(backbone, _Stream(32, batch, width), tmp_path / "quarter")
    full = _peak_bytes(backbone, _Stream(128, batch, width), tmp_path / "full")  # 16 MiB: 4x the cap
    assert max(full) < cap, full
    # Bounded by the shard, not the dataset: 4x the data, about the same peak.
    assert full[0] < 1.5 * quarter[0] and full[1] < 1.5 * quarter[1], (quarter, full)


def test_cached_batches_cover_every_row_once_per_epoch_and_reshuffle():
    backbone = _backbone()
    x, y = _images(50)
    cached = feature_cache.extract(backbone, (x, np.arange(50)), batch_size=8, shard_bytes=8 * 8 * 4)
    assert len(cached.shards) == 7
    batches = cached.dataset(batch_size=3, shuffle=True, seed=1)
    first = np.concatenate([batches[i][1] for i in range(len(batches))])
    batches.on_epoch_end()
    second = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(first) == sorted(second) == list(range(50))
    assert list(first) != list(second)
    features = np.concatenate([batches[i][0] for i in range(len(batches))])
    np.testing.assert_allclose(features, _expected(backbone, x)[second], atol=1e-5)


def test_attach_equals_backbone_then_head_and_exports(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    backbone = _backbone()
    x, y = _images(32)
    cached = feature_cache.extract(backbone, (x, y))
    head = keras.Sequential([keras.Input(cached.feature_shape), keras.layers.Dense(3, name="logits")])
    head.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head.fit(cached.dataset(batch_size=8), epochs=2, verbose=0)

    model = feature_cache.attach(backbone, head)
    expected = keras.ops.convert_to_numpy(head(backbone(x, training=False)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-5)
    result = keras_transfer.export(model, tmp_path / "model", probe=x[:4])
    assert result.max_abs_diff <= 1e-4 and os.path.exists(result.path)


def _frozen_classifier():
    backbone = _backbone()
    inputs = keras.Input((SIZE, SIZE, 3), name="images")
    head = ClassificationHead(3, pooling=None, hidden_units=(8,), name="head")
    model = keras.Model(inputs, head(backbone(inputs, training=False)))
    model.compile(**keras_transfer.models.compile_args(keras.optimizers.SGD(0.1), head))
    return model


def test_fit_cached_trains_the_model_as_end_to_end_fit_does(tmp_path):
    x, y = _images(48)
    cached_model = _frozen_classifier()
    end_to_end = _frozen_classifier()
    end_to_end.set_weights(cached_model.get_weights())
    history = feature_cache.fit_cached(
        cached_model, x, y, validation_data=(x[:16], y[:16]), cache_dir=tmp_path,
        batch_size=16, epochs=3, shuffle=False, verbose=0,
    )
    reference = end_to_end.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], reference.history["loss"], rtol=1e-4)
    assert len(history.history["val_loss"]) == 3
    for ours, theirs in zip(cached_model.get_weights(), end_to_end.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]


def test_fit_cached_refuses_a_trainable_backbone_and_an_uncompiled_model():
    model = _frozen_classifier()
    keras_transfer.unfreeze(model)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="trainable weights.*stale"):
        feature_cache.fit_cached(model, *_images(8))
    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="not compiled"):
        feature_cache.fit_cached(keras.Model(inputs, keras.layers.Dense(2)(inputs)), np.zeros((4, 4)), np.zeros(4, int))


def test_augmentation_cannot_be_cached():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.RandomFlip("horizontal", name="flip")(inputs)
    backbone = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match=r"random augmentation layers \['flip'\]"):
        feature_cache.extract(backbone, _images(4))


def test_bfloat16_extraction_is_close_and_keyed_apart(tmp_path):
    backbone = _backbone()
    x, y = _images(16)
    full = feature_cache.extract(backbone, (x, y), cache_dir=tmp_path)
    half = feature_cache.extract(backbone, (x, y), precision="bfloat16")
    np.testing.assert_allclose(half.arrays()[0], full.arrays()[0], rtol=0.05, atol=0.05)
    assert half.arrays()[0].dtype == np.float32
    with pytest.raises(ValueError, match="different precision"):
        feature_cache.extract(backbone, (x, y), cache_dir=tmp_path, precision="bfloat16")
    if not feature_cache._has_accelerator():  # "auto" is float32 on a CPU: the cache is reused.
        assert feature_cache.extract(backbone, (x, y), cache_dir=tmp_path, precision="auto").computed_batches == 0


def test_iterables_of_batches_and_unlabelled_arrays():
    backbone = _backbone()
    x, y = _images(20)
    batches = [(x[i : i + 6], y[i : i + 6]) for i in range(0, 20, 6)]
    from_batches = feature_cache.extract(backbone, batches)
    np.testing.assert_allclose(from_batches.arrays()[0], _expected(backbone, x), atol=1e-5)
    unlabelled = feature_cache.extract(backbone, x)
    assert unlabelled.arrays()[1] is None and not unlabelled.has_labels
    with pytest.raises(ValueError, match="without labels"):
        unlabelled.dataset()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"precision": "fp8"}, "precision"),
        ({"shard_bytes": 0}, "shard_bytes"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        feature_cache.extract(_backbone(), _images(4), **kwargs)


def test_bad_data():
    backbone = _backbone()
    x, y = _images(4)
    with pytest.raises(ValueError, match=r"differ in length.*len\(x\)=4, len\(y\)=3"):
        feature_cache.extract(backbone, (x, y[:3]))
    with pytest.raises(ValueError, match="integer class indices"):
        feature_cache.extract(backbone, (x, y.astype("float32")))
    with pytest.raises(ValueError, match="Expected a keras.Model"):
        feature_cache.extract("resnet50", (x, y))
