import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score

from keras_transfer.cli import demo
from keras_transfer.datasets import load_builtin


def test_quick_demo_writes_its_report_and_a_verified_export(tmp_path):
    out = tmp_path / "demo"
    metrics = demo.run(out=str(out), quick=True)
    files = set(os.listdir(out))
    exported = "saved_model"  # On every backend (torch: via a TensorFlow subprocess).
    assert {"metrics.json", "curves.png", "report.md", "model.keras", exported} <= files
    written = json.loads((out / "metrics.json").read_text())
    accuracies, f1_scores = written["target_test_accuracy"], written["target_test_macro_f1"]
    assert set(accuracies) == set(f1_scores) == {"source-only", "scratch", "transfer", "DANN", "CORAL"}
    # The source model learned its own domain well above chance (10%), and
    # every method beats chance on the target (measured 0.28-0.46, seed 0,
    # all three backends).
    assert metrics["source_test_accuracy"] > 0.5 and metrics["source_test_macro_f1"] > 0.5
    assert min(accuracies.values()) > 0.15 and min(f1_scores.values()) > 0.15
    table = (out / "report.md").read_text()
    assert "| transfer" in table and "(exported)" in table

    x, y = load_builtin("digits-m", "test", image_size=metrics["config"]["image_size"])
    reloaded = keras.saving.load_model(out / "model.keras")
    predicted = np.argmax(reloaded.predict(x, verbose=0), -1)
    best = metrics["exported"]["method"]
    assert best == max(("transfer", "DANN", "CORAL"), key=accuracies.get)
    # The report's numbers are the exported model's, recomputed here.
    np.testing.assert_allclose(np.mean(predicted == y), accuracies[best], atol=1e-6)
    np.testing.assert_allclose(
        f1_score(y, predicted, average="macro"), f1_scores[best], atol=1e-5
    )
    assert f"| {accuracies[best]:.3f} | {f1_scores[best]:.3f} |" in table

    loaded = tf.saved_model.load(str(out / exported))
    (served,) = loaded.serve(x[:4]).values()  # uint8 pixels; outputs named after the output layers
    np.testing.assert_allclose(
        np.asarray(served), reloaded.predict(x[:4].astype("float32"), verbose=0), atol=1e-4
    )


def test_overwrite_replaces_the_old_demo_folder_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.md").write_text("old run")
    (out / "old_only.txt").write_text("old run")

    def fails(staging, final, quick, seed):
        (tmp_path / "staging").write_text(staging)
        with open(os.path.join(staging, "report.md"), "w") as f:
            f.write("half a new run")
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_run", fails)
    with pytest.raises(KeyboardInterrupt):
        demo.run(out=str(out), overwrite=True)
    assert sorted(os.listdir(out)) == ["old_only.txt", "report.md"]
    assert (out / "report.md").read_text() == "old run"
    assert not os.path.exists((tmp_path / "staging").read_text())  # No leftovers.

    def succeeds(staging, final, quick, seed):
        with open(os.path.join(staging, "report.md"), "w") as f:
            f.write("new run")
        return {"exported": {"path": os.path.join(final, "saved_model")}, "seconds": 0}

    monkeypatch.setattr(demo, "_run", succeeds)
    demo.run(out=str(out), overwrite=True)
    assert os.listdir(out) == ["report.md"] and (out / "report.md").read_text() == "new run"
