"""The zoo's recommended domain-adaptation tasks and `zoo.domain_adaptation.adapt`.

Building the real backbones is the slow registry walk's job (test_zoo.py); here
the task's parts are replaced by tiny ones to check the wiring in seconds.
"""

import keras
import numpy as np
import pytest

from keras_transfer import adaptation
from keras_transfer import zoo
from keras_transfer.zoo import domain_adaptation

NAME = "domain_adaptation/recommended_mobilenetv3small"


def test_recommended_tasks_are_registered_for_every_backbone():
    names = zoo.list_tasks("domain_adaptation/recommended_*")
    assert names == sorted(
        f"domain_adaptation/recommended_{b}" for b in domain_adaptation.BACKBONES
    )
    assert zoo.get_task(NAME).task_kwargs == {"method": "recommended"}


def test_adapt_runs_the_recommended_path_on_the_task_parts(monkeypatch):
    calls = []

    def tiny_parts(spec, num_classes, weights, input_shape):
        calls.append((spec.name, num_classes, weights, input_shape))
        features = keras.Sequential(
            [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(4)]
        )
        return features, keras.layers.Dense(num_classes), keras.optimizers.Adam(1e-2)

    monkeypatch.setattr(domain_adaptation, "adaptation_parts", tiny_parts)
    rng = np.random.default_rng(0)
    x_source = rng.integers(0, 256, (100, 32, 32, 3)).astype("float32")
    x_target = rng.integers(0, 256, (100, 32, 32, 3)).astype("float32")
    result = domain_adaptation.adapt(
        NAME, 2, (x_source, np.arange(100) % 2), x_target,
        weights=None, epochs=1, budget=1, batch_size=16,
    )
    assert calls == [(NAME, 2, None, (32, 32, 3))]  # the data's shape
    assert isinstance(result, adaptation.AdaptationResult)
    assert [c.name for c in result.report.candidates] == ["source_only"]
    assert result.report.fell_back
    with pytest.raises(ValueError, match="domain_adaptation/"):
        domain_adaptation.adapt("test/tiny_cnn", 2, (x_source, np.arange(100) % 2), x_target)
