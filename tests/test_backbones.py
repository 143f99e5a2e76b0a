import importlib
import re

import keras
import numpy as np
import pytest

from keras_transfer.backbones import APPLICATIONS
from keras_transfer.backbones import _resolve
from keras_transfer.backbones import list_backbones
from keras_transfer.backbones import load_backbone
from keras_transfer.models import build_classifier
from keras_transfer.preprocessing import ImageNetPreprocessing
from keras_transfer.testing import TestCase

# One backbone per preprocessing mode, cheap to build at 32px. DenseNet (the
# only "torch" family) costs over a minute to build on JAX on a small CPU, so
# its mode is covered by the numeric preprocessing test alone.
REPRESENTATIVES = {
    "tf": ("MobileNet", 1024),
    "caffe": ("VGG16", 512),
    "identity": ("MobileNetV3Small", 576),
}
FAMILIES = sorted({spec.family for spec in APPLICATIONS.values()})


@pytest.fixture(scope="module")
def mobilenet():
    """One 32px MobileNet (random weights) shared by the module's tests."""
    return load_backbone("MobileNet", weights=None, input_shape=(32, 32, 3))


def _raw_images(n=2, size=32):
    return np.random.randint(0, 256, (n, size, size, 3)).astype("uint8")


# --- Registry metadata, no model built -------------------------------------


def test_registry_covers_every_family():
    assert len(list_backbones()) == 40
    assert set(FAMILIES) == {
        "convnext", "densenet", "efficientnet", "efficientnet_v2",
        "inception_resnet_v2", "inception_v3", "mobilenet", "mobilenet_v2",
        "mobilenet_v3", "nasnet", "resnet", "resnet_v2", "vgg16", "vgg19",
        "xception",
    }


@pytest.mark.parametrize("name", list_backbones())
def test_metadata_points_at_keras_applications(name):
    spec = APPLICATIONS[name.lower()]
    assert spec.name == name
    assert callable(getattr(keras.applications, name))
    family = importlib.import_module(f"keras.applications.{spec.family}")
    assert callable(family.preprocess_input)
    assert spec.preprocessing in ("caffe", "tf", "torch", "identity")
    assert spec.min_size <= spec.default_size


@pytest.mark.parametrize(
    "alias, expected",
    [
        ("resnet50", "ResNet50"),
        ("ResNet50", "ResNet50"),
        ("efficientnet_v2_b0", "EfficientNetV2B0"),
        ("convnext_tiny", "ConvNeXtTiny"),
        ("MobileNet-V3-Small", "MobileNetV3Small"),
        ("inception_resnet_v2", "InceptionResNetV2"),
    ],
)
def test_names_are_case_and_separator_tolerant(alias, expected):
    source, spec = _resolve(alias)
    assert source == "keras.applications"
    assert spec.name == expected


def test_list_backbones_filters():
    assert list_backbones("efficientnetv2*") == [
        "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2",
        "EfficientNetV2B3", "EfficientNetV2L", "EfficientNetV2M",
        "EfficientNetV2S",
    ]
    assert list_backbones("VGG*") == ["VGG16", "VGG19"]


def test_hub_dispatch(tmp_path):
    assert _resolve("hf://sentence-transformers/all-MiniLM-L6-v2") == (
        "keras_hub", "hf://sentence-transformers/all-MiniLM-L6-v2"
    )
    assert _resolve("kaggle://keras/bert/keras/bert_tiny_en_uncased")[0] == (
        "keras_hub"
    )
    assert _resolve(str(tmp_path)) == ("keras_hub", str(tmp_path))
    pytest.importorskip("keras_hub")
    assert _resolve("bert_tiny_en_uncased") == (
        "keras_hub", "bert_tiny_en_uncased"
    )


# --- Preprocessing equals keras.applications.<family>.preprocess_input ------


@pytest.mark.parametrize("family", FAMILIES)
def test_preprocessing_matches_keras_applications(family):
    mode = next(
        s.preprocessing for s in APPLICATIONS.values() if s.family == family
    )
    images = _raw_images(size=5).astype("float32")
    expected = importlib.import_module(
        f"keras.applications.{family}"
    ).preprocess_input(images.copy())
    actual = ImageNetPreprocessing(mode)(images)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(actual), expected, rtol=1e-6, atol=1e-4
    )


@pytest.mark.parametrize("mode", ["caffe", "torch"])
def test_preprocessing_channels_first(mode):
    images = _raw_images(size=4).astype("float32").transpose(0, 3, 1, 2)
    expected = keras.applications.imagenet_utils.preprocess_input(
        images.copy(), data_format="channels_first", mode=mode
    )
    actual = ImageNetPreprocessing(mode, data_format="channels_first")(images)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(actual), expected, rtol=1e-6, atol=1e-4
    )


def test_preprocessing_takes_uint8_and_serializes():
    layer = ImageNetPreprocessing("torch")
    revived = TestCase().run_serialization_test(layer)
    out = revived(_raw_images(1, 2))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    with pytest.raises(ValueError, match="mode='inception'"):
        ImageNetPreprocessing("inception")


# --- Building (weights=None, 32px) -----------------------------------------


@pytest.mark.parametrize("mode", sorted(REPRESENTATIVES))
def test_representative_builds_and_freezes(mode, mobilenet):
    name, dim = REPRESENTATIVES[mode]
    feature_model, preprocessing = (
        mobilenet
        if name == "MobileNet"
        else load_backbone(name, weights=None, input_shape=(32, 32, 3))
    )
    assert preprocessing.mode == mode
    features = feature_model(preprocessing(_raw_images()), training=False)
    assert tuple(features.shape) == (2, dim)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(features)))
    assert feature_model.trainable_weights == []


def test_info(mobilenet):
    assert mobilenet.info.name == "MobileNet"
    assert mobilenet.info.source == "keras.applications"
    assert mobilenet.info.modality == "image"
    assert mobilenet.info.spec.family == "mobilenet"
    assert mobilenet.info.input_shape == (32, 32, 3)


def test_feature_map_and_trainable():
    backbone = load_backbone(
        "VGG16", weights=None, input_shape=(32, 32, 3), pooling=None,
        trainable=True,
    )
    assert backbone.feature_model.output_shape == (None, 1, 1, 512)
    assert len(backbone.feature_model.trainable_weights) == 26


def test_weights_file_round_trip(tmp_path, mobilenet):
    path = str(tmp_path / "backbone.weights.h5")
    source, preprocessing = mobilenet
    source.save_weights(path)
    loaded, _ = load_backbone(
        "mobile_net", weights=path, input_shape=(32, 32, 3)
    )
    # Two random initialisations never agree, so equality means loaded.
    for expected, actual in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(actual),
            keras.ops.convert_to_numpy(expected),
        )
    x = preprocessing(_raw_images())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(source(x, training=False)),
        rtol=1e-5,
        atol=0,
    )


def test_image_classifier_trains_head_only_on_raw_images():
    model = build_classifier(
        "mobilenet", 3, weights=None, input_shape=(32, 32, 3),
        head={"hidden_units": (8,)},
    )
    backbone = model.layers[2]
    assert isinstance(backbone, keras.Model)
    before = [keras.ops.convert_to_numpy(w) for w in backbone.weights]
    head_before = [
        keras.ops.convert_to_numpy(w) for w in model.layers[-1].weights
    ]
    images, labels = _raw_images(8), np.arange(8) % 3
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert "accuracy" in history.history
    # Frozen backbone: weights and BatchNormalization statistics unchanged.
    for old, new in zip(before, backbone.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))
    assert any(
        not np.allclose(old, keras.ops.convert_to_numpy(new))
        for old, new in zip(head_before, model.layers[-1].weights)
    )
    assert model.predict(images, verbose=0).shape == (8, 3)
    TestCase().run_saving_test(model, images.astype("float32"), atol=1e-5)


# --- Errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("resnet5", "Did you mean 'ResNet50'"),
        ("efficientnet_b9", "Did you mean 'EfficientNetB7'"),
        ("qwerty_net", "list_backbones()"),
        ("./no/such/preset_dir", "no directory exists"),
    ],
)
def test_unknown_name(name, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_backbone(name, weights=None)


@pytest.mark.parametrize(
    "weights, message",
    [
        ("imagnet", "Received: weights='imagnet'"),
        (3, "Received: weights=3"),
        ("/no/such/file.weights.h5", "no such weights file"),
    ],
)
def test_bad_weights(weights, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        load_backbone("resnet50", weights=weights)
    assert "'imagenet'" in str(error.value)


@pytest.mark.parametrize(
    "name, weights, input_shape, message",
    [
        ("Xception", None, (64, 64, 3), "at least 71px"),
        ("InceptionV3", None, (32, 32, 3), "at least 75px"),
        ("resnet50", None, (16, 16, 3), "at least 32px"),
        ("resnet50", None, (32, 32, 1), "RGB images (3 channels)"),
        ("resnet50", None, (32, 32), "3 dimensions"),
        ("NASNetMobile", "imagenet", (None, None, 3), "static size"),
    ],
)
def test_bad_input_shape(name, weights, input_shape, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        load_backbone(name, weights=weights, input_shape=input_shape)
    assert f"input_shape={input_shape}" in str(error.value)
    assert name.lower() in str(error.value).lower()


def test_input_shape_rejected_for_hub_presets(tmp_path):
    with pytest.raises(ValueError, match="Expected None"):
        load_backbone(str(tmp_path), input_shape=(32, 32, 3))


def test_bad_pooling():
    with pytest.raises(ValueError, match="pooling='mean'"):
        load_backbone("resnet50", weights=None, pooling="mean")


def test_local_keras_hub_image_preset(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    hub_backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64],
        stackwise_num_blocks=[1],
        stackwise_num_strides=[1],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(16, 16, 3),
    )
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(16, 16), scale=1 / 255.0
    )
    preset = str(tmp_path / "tiny_resnet")
    hub_backbone.save_to_preset(preset)
    keras_hub.models.ResNetImageClassifierPreprocessor(
        image_converter=converter
    ).save_to_preset(preset)

    backbone = load_backbone(preset)
    assert backbone.info.source == "keras_hub"
    assert backbone.info.modality == "image"
    assert backbone.feature_model.output_shape == (None, 64)
    images = _raw_images(4, 16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(backbone.preprocessing(images)),
        images / 255.0,
        rtol=1e-6,
    )
    model = build_classifier(preset, 3)
    history = model.fit(images, np.arange(4) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(images, verbose=0).shape == (4, 3)
