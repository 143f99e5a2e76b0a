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


def _cheap_format(backend):
    """On torch a SavedModel costs a TensorFlow subprocess: tests of properties
    that do not depend on the format use ONNX there."""
    return "onnx" if backend == "torch" else "auto"


def test_export_round_trip_matches_keras_on_real_images(tmp_path, backend):
    model = _image_model()
    images = np.random.uniform(0, 255, (5, 16, 16, 3)).astype("float32")
    result = export(model, tmp_path / "model", probe=images)
    assert result.format == "tf_saved_model"
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
    result = export(model, tmp_path / "mobilenet", format=_cheap_format(backend))
    assert result.max_abs_diff <= 1e-4


def test_export_multiple_named_inputs_and_outputs(tmp_path, backend):
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

        reloaded = tf.saved_model.load(result.path)
        signature = reloaded.signatures["serving_default"]
        assert set(signature.structured_input_signature[1]) == {"features", "token_ids"}
        assert set(signature.structured_outputs) == {"left", "right"}
        assert set(reloaded.signatures) == {"serving_default"}  # Not images: no uint8 signature.


def test_export_sequential_names_output_by_last_layer(tmp_path, backend):
    if backend == "torch":
        pytest.importorskip("onnxruntime")
    model = keras.Sequential([keras.Input((5,), name="features"), keras.layers.Dense(2, name="scores")])
    result = export(model, tmp_path / "seq", format=_cheap_format(backend))
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
    export(model, target, overwrite=True, format=_cheap_format(backend))
    assert not (target / "keep.txt").exists() and os.path.exists(target)
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_failed_check_leaves_nothing_behind(tmp_path, monkeypatch, backend):
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2, name="out")])
    real = export_module._run_saved_model

    def corrupted(*args):
        return {k: v + 0.5 for k, v in real(*args).items()}

    monkeypatch.setattr(export_module, "_run_saved_model", corrupted)
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


@pytest.mark.bad_input
def test_signatures_take_uint8_and_float_pixels_and_state_the_expected_shape(tmp_path, backend):
    import tensorflow as tf

    model = _image_model()
    images = np.random.uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    result = export(model, tmp_path / "model", probe=images)
    reloaded = tf.saved_model.load(result.path)
    assert set(reloaded.signatures) == {"serving_default", "serve_uint8"}
    pixels = images.round().astype("uint8")
    expected = keras.ops.convert_to_numpy(model(pixels.astype("float32"), training=False))
    served = reloaded.signatures["serve_uint8"](image=tf.constant(pixels))["logits"]
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(reloaded.serve(tf.constant(pixels))["logits"].numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(
        reloaded.serve(tf.constant(pixels.astype("float32")))["logits"].numpy(), expected, atol=1e-4
    )
    for name in ("serving_default", "serve_uint8"):
        dtype = "uint8" if name == "serve_uint8" else "float32"
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=r"Input `image` must have shape \(None, 16, 16, 3\).*Received: shape\] \[1 20 20 3\]",
        ):
            reloaded.signatures[name](image=tf.zeros((1, 20, 20, 3), dtype))


def test_a_model_taking_any_image_size_exports(tmp_path, backend):
    """JAX could not save such a SavedModel (jax2tf custom gradients)."""
    images = keras.Input((None, None, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(images))
    model = keras.Model(images, keras.layers.Dense(2, name="logits")(x))
    result = export(model, tmp_path / "any", probe=np.ones((1, 12, 9, 3), "float32"))
    outputs = _reload_outputs(result, {"image": np.ones((2, 20, 7, 3), "float32")})
    assert outputs["logits"].shape == (2, 2)


def test_onnx_from_every_backend(tmp_path, backend):
    pytest.importorskip("onnxruntime")
    pytest.importorskip({"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "onnxscript"}[backend])
    model = _image_model()
    images = np.random.uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    result = export(model, tmp_path / "model.onnx", probe=images, format="onnx")
    assert result.format == "onnx" and result.max_abs_diff <= 1e-4
    outputs = _reload_outputs(result, {"image": images})
    np.testing.assert_allclose(
        outputs["logits"], keras.ops.convert_to_numpy(model(images, training=False)), atol=1e-4
    )


@pytest.mark.bad_input
def test_non_finite_probes_and_models_are_named_as_such(tmp_path):
    model = _image_model()
    probe = np.zeros((2, 16, 16, 3), "float32")
    probe[1, 4, 5, 2] = np.inf
    with pytest.raises(ValueError, match=r"infinite value in input `image` at index \(1, 4, 5, 2\)"):
        export(model, tmp_path / "m", probe=probe)
    logits = model.get_layer("logits")
    logits.set_weights([np.full_like(w, np.nan) for w in logits.get_weights()])
    with pytest.raises(ValueError, match="output `logits` holds NaN or infinite values on the probe"):
        export(model, tmp_path / "m")
    assert os.listdir(tmp_path) == []


@pytest.mark.bad_input
def test_an_unwritable_destination_is_a_clear_error(tmp_path):
    model = _image_model()
    with pytest.raises(ValueError, match="cannot write in its folder '/proc'"):
        export(model, "/proc/keras_transfer_export")


@pytest.mark.bad_input
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


def test_default_atol_widens_only_for_reduced_precision_compute():
    from keras_transfer.exporting import default_atol

    def dense_model(policy):
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(2, dtype=policy)(inputs))

    outputs = {"dense": np.array([[-3.0, 1.0]])}
    assert default_atol(dense_model("float32"), outputs) == 1e-4
    assert default_atol(dense_model("mixed_bfloat16"), outputs) == pytest.approx(1e-4 + 8 * 2**-8 * 3)
    assert default_atol(dense_model("mixed_float16"), outputs) == pytest.approx(1e-4 + 8 * 2**-11 * 3)
