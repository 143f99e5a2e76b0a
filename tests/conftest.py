import os

import keras
import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--run-large",
        action="store_true",
        help="Run tests that need network downloads (pretrained weights, tfds).",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="needs network downloads; use --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the same seed and an empty Keras name scope."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(1337)
    np.random.seed(1337)
    yield


@pytest.fixture
def backend():
    return keras.backend.backend()


print(f"keras-transfer tests: KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}")
