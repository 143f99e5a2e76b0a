import json
import os

import keras
import numpy as np

from keras_transfer.cli import demo
from keras_transfer.datasets import load_builtin


def test_quick_demo_writes_its_report_and_a_verified_export(tmp_path):
    out = tmp_path / "demo"
    metrics = demo.run(out=str(out), quick=True)
    files = set(os.listdir(out))
    exported = "saved_model"  # On every backend (torch: via a TensorFlow subprocess).
    assert {"metrics.json", "curves.png", "report.md", "model.keras", exported} <= files
    accuracies = json.loads((out / "metrics.json").read_text())["target_test_accuracy"]
    assert set(accuracies) == {"source-only", "scratch", "transfer", "DANN", "CORAL"}
    assert all(0.0 <= a <= 1.0 for a in accuracies.values())
    # The source model learned its own domain well above chance (10%).
    assert metrics["source_test_accuracy"] > 0.5
    table = (out / "report.md").read_text()
    assert "| transfer" in table and "(exported)" in table

    x, y = load_builtin("digits-m", "test", image_size=metrics["config"]["image_size"])
    reloaded = keras.saving.load_model(out / "model.keras")
    accuracy = np.mean(np.argmax(reloaded.predict(x, verbose=0), -1) == y)
    best = metrics["exported"]["method"]
    np.testing.assert_allclose(accuracy, accuracies[best], atol=1e-6)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(out / exported))
    (served,) = loaded.serve(x[:4]).values()  # uint8 pixels; outputs named after the output layers
    np.testing.assert_allclose(
        np.asarray(served), reloaded.predict(x[:4].astype("float32"), verbose=0), atol=1e-4
    )
