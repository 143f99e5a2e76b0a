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
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="Run slow offline tests (every zoo entry built and trained).",
    )


def pytest_collection_modifyitems(config, items):
    for marker, option, reason in (
        ("large", "--run-large", "needs network downloads"),
        ("slow", "--run-slow", "slow offline test"),
    ):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"{reason}; use {option}")
        for item in items:
            if marker in item.keywords:
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
