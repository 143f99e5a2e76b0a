import gc
import os
import re

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


# A test named for a bad input a user can give (e.g. `test_bad_weights`,
# `test_unknown_name`, `test_splits_with_other_class_names_are_refused`) counts
# as a `bad_input` case without its own mark; others carry the mark by hand.
_BAD_INPUT_NAME = re.compile(
    r"^test_[a-z0-9_]*(bad|invalid|refus|reject|unknown|wrong|mismatch)"
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _BAD_INPUT_NAME.match(getattr(item, "originalname", item.name)):
            item.add_marker(pytest.mark.bad_input)
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
_DOC_EXAMPLES = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_runtest_logreport(report):
    """Counts the `bad_input` cases that ran: held (passed) or not (failed).

    Also counts the `doc_example` items: passed, failed, skipped.
    """
    if "doc_example" in report.keywords:
        if report.skipped:
            _DOC_EXAMPLES["skipped"] += 1
        elif report.when == "call" or (report.when == "setup" and report.failed):
            _DOC_EXAMPLES["passed" if report.passed else "failed"] += 1
    if "bad_input" not in report.keywords or report.skipped:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        _BAD_INPUTS["held" if report.passed else "not held"] += 1


def pytest_terminal_summary(terminalreporter):
    if sum(_DOC_EXAMPLES.values()):
        terminalreporter.write_line(
            f"docstring examples and README/docs blocks executed on "
            f"{os.environ.get('KERAS_BACKEND')}: {_DOC_EXAMPLES['passed'] + _DOC_EXAMPLES['failed']}"
            f" (passed {_DOC_EXAMPLES['passed']}, failed {_DOC_EXAMPLES['failed']}, "
            f"skipped {_DOC_EXAMPLES['skipped']})"
        )
    tried = sum(_BAD_INPUTS.values())
    if tried:
        terminalreporter.write_line(
            f"bad-input cases tried: {tried} on {os.environ.get('KERAS_BACKEND')}; "
            f"held (clear error or correct result): {_BAD_INPUTS['held']}; "
            f"not held: {_BAD_INPUTS['not held']}"
        )


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the same seed and an empty Keras name scope.

    Without `clear_session`'s `gc.collect()`: a full collection walks every
    object the process holds (TensorFlow, JAX or torch and their caches),
    0.5-1.7 s per test late in a run, and made up 40 % of a suite run
    (measured on JAX: 917 s of setup in a 2284 s run). Python's own collector
    still frees cycles as they accumulate.
    """
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1337)
    np.random.seed(1337)
    yield


@pytest.fixture
def backend():
    return keras.backend.backend()


# What the imports above created lives as long as the process: keep it out of
# every later collection (Python's `gc.freeze`).
gc.collect()
gc.freeze()

print(f"keras-transfer tests: KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}")
