"""Fault injection: `keras-transfer` killed (SIGKILL) at chosen points loses nothing.

The CLI runs in a subprocess with `KERAS_TRANSFER_CRASH_AT=<point>`; the
process kills itself there (keras_transfer/_atomic.py, `crash_point`), as a
power cut or an OOM kill would. Each test checks both outcomes: right after
the kill, the destination holds the old run or artifact, whole; after
`--resume` (or a rerun), the new one, whole and equal to an uninterrupted run.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_transfer import cli
from keras_transfer._atomic import CRASH_AT

pytestmark = [pytest.mark.slow, pytest.mark.bad_input]

FIT = ["fit", "test/tiny_cnn", "--data", "digits", "--epochs", "2", "--image-size", "16",
       "--batch-size", "64"]


def _killed_cli(*args, crash_at):
    env = {**os.environ, CRASH_AT: crash_at}
    result = subprocess.run(
        [sys.executable, "-m", "keras_transfer.cli", *map(str, args)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == -signal.SIGKILL, (crash_at, result.returncode, result.stderr[-3000:])


def _snapshot(run):
    """Every file of a run folder: its bytes, or (for model.keras) its weights."""
    files = {}
    for folder, _, names in os.walk(run):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, run)] = f.read()
    return files


def _weights(run):
    return keras.saving.load_model(os.path.join(run, "model.keras")).get_weights()


def test_killed_fit_keeps_the_old_run_and_resumes_to_the_same_weights(tmp_path, capsys):
    out = tmp_path / "run"
    staging = tmp_path / ".run.incomplete"
    assert cli.main([*FIT, "--out", str(out)]) == 0
    reference = _snapshot(out)

    # Killed after the first epoch of an --overwrite rerun: the old run stays.
    _killed_cli(*FIT, "--out", out, "--overwrite", crash_at="fit:epoch_end:0")
    assert _snapshot(out) == reference
    assert "epoch-1" in os.listdir(staging / "checkpoints")
    capsys.readouterr()
    assert cli.main([*FIT, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    changed = [*FIT[:FIT.index("--epochs")], "--epochs", "3", *FIT[FIT.index("--epochs") + 2:]]
    assert cli.main([*changed, "--out", str(out), "--resume"]) == 2
    assert "epochs: 2 then, 3 now" in capsys.readouterr().err

    # Resumed, and killed just before the swap: still the old run.
    _killed_cli(*FIT, "--out", out, "--overwrite", "--resume", crash_at="fit:swap")
    assert _snapshot(out) == reference
    assert json.loads((staging / "run.json").read_text())["finished"] is True

    # Resumed again: only the swap is left; the new run is whole.
    assert cli.main([*FIT, "--out", str(out), "--resume"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert set(_snapshot(out)) == set(reference)  # The same files, nothing stale beside them.
    new = json.loads((out / "metrics.json").read_text())
    old = json.loads(reference["metrics.json"])
    assert new["epochs_run"] == old["epochs_run"] == 2
    np.testing.assert_allclose(new["history"]["loss"], old["history"]["loss"], rtol=1e-5)
    for resumed, uninterrupted in zip(_weights(out), _weights_from_bytes(reference, tmp_path)):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)


def _weights_from_bytes(snapshot, folder):
    path = folder / "reference.keras"
    path.write_bytes(snapshot["model.keras"])
    try:
        return keras.saving.load_model(path).get_weights()
    finally:
        path.unlink()


def _serve(path, images):
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    (outputs,) = signature(image=tf.constant(images)).values()
    return outputs.numpy()


def test_killed_export_keeps_the_old_artifact(tmp_path):
    """Also: the CLI subprocess loads a model holding keras-transfer classes."""
    from keras_transfer import zoo

    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    models = {}
    for seed, name in enumerate(("old", "new")):
        keras.utils.set_random_seed(seed)
        models[name] = zoo.build("test/tiny_cnn", 3, input_shape=(16, 16, 3))
        models[name].save(tmp_path / f"{name}.keras")
    exported = tmp_path / "exported"
    assert cli.main(["export", str(tmp_path / "old.keras"), "--out", str(exported)]) == 0
    old_outputs = _serve(exported, images)
    np.testing.assert_allclose(old_outputs, keras.ops.convert_to_numpy(models["old"](images)), atol=1e-4)

    _killed_cli("export", tmp_path / "new.keras", "--out", exported, "--overwrite", crash_at="export:replace")
    np.testing.assert_allclose(_serve(exported, images), old_outputs)

    assert cli.main(["export", str(tmp_path / "new.keras"), "--out", str(exported), "--overwrite"]) == 0
    np.testing.assert_allclose(
        _serve(exported, images), keras.ops.convert_to_numpy(models["new"](images)), atol=1e-4
    )
