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


_BAD_INPUTS = {"held": 0, "not held": 0}


def pytest_runtest_logreport(report):
    """Counts the `bad_input` cases that ran: held (passed) or not (failed)."""
    if "bad_input" not in report.keywords or report.skipped:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        _BAD_INPUTS["held" if report.passed else "not held"] += 1


def pytest_terminal_summary(terminalreporter):
    tried = sum(_BAD_INPUTS.values())
    if tried:
        terminalreporter.write_line(
            f"bad-input cases tried: {tried} on {os.environ.get('KERAS_BACKEND')}; "
            f"held (clear error or correct result): {_BAD_INPUTS['held']}; "
            f"not held: {_BAD_INPUTS['not held']}"
        )


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
