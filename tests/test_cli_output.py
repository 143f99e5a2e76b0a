"""What `keras-transfer` prints and writes: quiet by default, the events, TensorBoard, report.html."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from keras_transfer.callbacks import StagedUnfreezing

cli_main = importlib.import_module("keras_transfer.cli.main")  # the module, not the function

BACKEND = keras.backend.backend()
CHATTER = (
    "absl::InitializeLog",
    "cudart_stub",
    "cuInit",
    "WARNING:absl",
    "`shuffle=True` was passed",
    "TracerWarning",
)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One `fit` through the console entry, as a user runs it."""
    out = tmp_path_factory.mktemp("cli") / "run"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_transfer.cli", "--backend", BACKEND, "fit",
         "test/tiny_cnn", "--data", "digits", "--epochs", "2", "--image-size", "16",
         "--batch-size", "128", "--weights", "none", "--tensorboard", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.skipif(BACKEND == "tensorflow", reason="the CLI is checked on jax and torch")
def test_fit_is_quiet_prints_events_and_writes_tensorboard_and_report(fitted):
    out, result = fitted
    for noise in CHATTER:
        assert noise not in result.stderr, result.stderr
    assert "Epoch 1/2" in result.stdout and "Epoch 2/2" in result.stdout  # Keras' bars
    assert "Restoring model weights from the end of the best epoch" in result.stdout
    assert "best epoch: " in result.stdout
    assert f"report: {out / 'report.html'}" in result.stdout
    for split in ("train", "validation"):
        events = os.listdir(out / "tensorboard" / split)
        assert any(name.startswith("events.out.tfevents") for name in events), events
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # curves, confusion, predictions
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['test']['accuracy']:.4g}" in page
    assert "test (evaluated once, after training)" in page and "stratified" in page


@pytest.mark.skipif(BACKEND == "tensorflow", reason="the CLI is checked on jax and torch")
@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_the_fit_report_renders_in_headless_chromium(fitted, tmp_path):
    from test_reports import _screenshot

    out, _ = fitted
    browser = shutil.which("chromium")
    blank = _screenshot(browser, "about:blank", tmp_path / "blank.png")
    shot = _screenshot(browser, (out / "report.html").as_uri(), tmp_path / "shot.png")
    changed = np.abs(shot - blank).sum(axis=-1) > 60
    assert changed.mean() > 0.01, "the report rendered (almost) blank"


@pytest.mark.skipif(BACKEND != "tensorflow", reason="backend-independent; once")
def test_known_harmless_warnings_are_hidden_unless_verbose(recwarn):
    harmless = "`shuffle=True` was passed, but will be ignored since the data ..."

    def emitted(quiet):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with cli_main._quiet(quiet):
                warnings.warn(harmless, UserWarning)
                warnings.warn("something else", UserWarning)
        return [str(w.message) for w in caught]

    assert emitted(quiet=True) == ["something else"]
    assert emitted(quiet=False) == [harmless, "something else"]
    parser = cli_main._parser()
    assert parser.parse_args(["-v", "list"]).verbose
    assert not parser.parse_args(["list"]).verbose


def test_staged_unfreezing_prints_what_it_unfroze_and_the_rate(capsys):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")
    outputs = keras.layers.Dense(2, name="out")(hidden(inputs))
    model = keras.Model(inputs, outputs)
    hidden.trainable = False
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[StagedUnfreezing({1: "hidden"}, verbose=1)])
    lines = [l for l in capsys.readouterr().out.splitlines() if "StagedUnfreezing" in l]
    assert len(lines) == 1
    assert "epoch 2 (stages[1])" in lines[0] and "unfroze 'hidden': hidden;" in lines[0]
    assert "learning rate 0.05;" in lines[0] and "4 trainable variables" in lines[0]
