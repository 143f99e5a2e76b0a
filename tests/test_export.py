import os

import keras
import numpy as np
import pytest

from keras_transfer import exporting as export_module
from keras_transfer.exporting import export


def _image_model():
    """A small transfer-style model: preprocessing, conv + BN, dropout, head."""
    images = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255)(images)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(images, logits)


def _reload_outputs(result, inputs):
    """Run the artifact with the runtime that serves it, independently of export."""
    if result.format == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(result.path)
        assert [i.name for i in session.get_inputs()] == list(inputs)
        return {"logits": session.run(None, inputs)[0]}
    import tensorflow as tf

    reloaded = tf.saved_model.load(result.path)
    signature = reloaded.signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(inputs)
    outputs = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def _expected_format(backend):
    return "onnx" if backend == "torch" else "tf_saved_model"


def test_export_round_trip_matches_keras_on_real_images(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    model = _image_model()
    images = np.random.uniform(0, 255, (5, 16, 16, 3)).astype("float32")
    result = export(model, tmp_path / "model", probe=images)
    assert result.format == _expected_format(backend)
    assert result.path == str(tmp_path / "model") and os.path.exists(result.path)
    assert result.max_abs_diff <= 1e-4
    assert os.listdir(tmp_path) == ["model"]  # No staging leftovers.
    outputs = _reload_outputs(result, {"image": images})
    assert list(outputs) == ["logits"]
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-4)
    # A batch size never seen at export time works (dynamic batch).
    outputs = _reload_outputs(result, {"image": images[:3]})
    assert outputs["logits"].shape == (3, 3)


def test_export_mobilenet_transfer_model(tmp_path, backend):
    if backend == "jax":
        pytest.skip(
            "jax2tf + XLA compile of MobileNetV2 takes ~45 s on 2 CPUs; the JAX "
            "SavedModel path is covered by the conv + BN model tests"
        )
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    backbone = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    backbone.trainable = False
    images = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1)(images)
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(images, keras.layers.Dense(4, name="logits")(x))
    result = export(model, tmp_path / "mobilenet")
    assert result.format == _expected_format(backend) and result.max_abs_diff <= 1e-4


def test_export_multiple_named_inputs_and_outputs(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    features = keras.Input((4,), name="features")
    token_ids = keras.Input((3,), dtype="int32", name="token_ids")
    merged = keras.layers.Concatenate()([features, keras.ops.cast(token_ids, "float32")])
    model = keras.Model(
        [features, token_ids],
        [keras.layers.Dense(2, name="left")(merged), keras.layers.Dense(1, name="right")(features)],
    )
    result = export(model, tmp_path / "two")
    assert result.max_abs_diff <= 1e-4
    if result.format == "tf_saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(result.path).signatures["serving_default"]
        assert set(signature.structured_input_signature[1]) == {"features", "token_ids"}
        assert set(signature.structured_outputs) == {"left", "right"}


def test_export_sequential_names_output_by_last_layer(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    model = keras.Sequential([keras.Input((5,), name="features"), keras.layers.Dense(2, name="scores")])
    result = export(model, tmp_path / "seq")
    assert result.max_abs_diff <= 1e-4
    if result.format == "tf_saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(result.path).signatures["serving_default"]
        assert list(signature.structured_outputs) == ["scores"]


def test_existing_path_is_kept_without_overwrite_and_replaced_with_it(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="already exists. Pass overwrite=True"):
        export(model, target)
    assert (target / "keep.txt").read_text() == "precious"
    export(model, target, overwrite=True)
    assert not (target / "keep.txt").exists() and os.path.exists(target)
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_failed_check_leaves_nothing_behind(tmp_path, monkeypatch, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2, name="out")])
    runner = "_run_onnx" if backend == "torch" else "_run_saved_model"
    real = getattr(export_module, runner)

    def corrupted(*args):
        outputs = real(*args)
        if isinstance(outputs, dict):
            return {k: v + 0.5 for k, v in outputs.items()}
        return [v + 0.5 for v in outputs]

    monkeypatch.setattr(export_module, runner, corrupted)
    with pytest.raises(ValueError, match=r"does not reproduce the Keras model: max \|difference\| = 0.5"):
        export(model, tmp_path / "model")
    assert os.listdir(tmp_path) == []
    # Same for an existing export that overwrite=True would have replaced.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "saved_model.pb").write_text("old")
    with pytest.raises(ValueError, match="does not reproduce"):
        export(model, tmp_path / "old", overwrite=True)
    assert (tmp_path / "old" / "saved_model.pb").read_text() == "old"
    assert os.listdir(tmp_path) == ["old"]


def test_torch_saved_model_raises_with_what_to_do(tmp_path, backend):
    if backend != "torch":
        pytest.skip("torch-only limitation")
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow or jax"):
        export(model, tmp_path / "model", format="tf_saved_model")
    assert os.listdir(tmp_path) == []


def test_bad_arguments(tmp_path):
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="format='savedmodel'"):
        export(model, tmp_path / "m", format="savedmodel")
    with pytest.raises(ValueError, match="atol=-1"):
        export(model, tmp_path / "m", atol=-1)
    with pytest.raises(ValueError, match="1 input\\(s\\) but 2 array\\(s\\)"):
        export(model, tmp_path / "m", probe=[np.zeros((1, 3)), np.zeros((1, 3))])
    with pytest.raises(ValueError, match="built functional or Sequential"):
        export(keras.Sequential([keras.layers.Dense(1)]), tmp_path / "m")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot create its parent folder"):
        export(model, blocker / "sub" / "m")
    assert sorted(os.listdir(tmp_path)) == ["a_file"]
