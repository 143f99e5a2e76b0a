import json
import os
import subprocess
import sys

import keras
import pytest

from keras_transfer import cli


def _fit(out, *extra):
    return cli.main(
        ["fit", "test/tiny_cnn", "--data", "digits", "--epochs", "2",
         "--image-size", "16", "--batch-size", "64", "--out", str(out), *extra]
    )


def test_list_and_filter(capsys):
    assert cli.main(["list", "--filter", "test/*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["test/tiny_cnn", "test/tiny_text"]
    assert cli.main(["list", "--filter", "nothing/*"]) == 1


def test_info_prints_the_spec(capsys):
    assert cli.main(["info", "image_classification/resnet50"]) == 0
    out = capsys.readouterr().out
    assert "ResNet50" in out and "unfreeze_stages" in out and "(224, 224, 3)" in out


def test_unknown_task_is_a_clear_error(capsys):
    assert cli.main(["info", "image_classification/resnet5"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_fit_writes_every_file_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert _fit(out) == 0
    files = set(os.listdir(out))
    exported = "model.onnx" if keras.backend.backend() == "torch" else "saved_model"
    assert {"metrics.json", "curves.png", "model.keras", exported} <= files
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_classes"] == 10 and metrics["input_shape"] == [16, 16, 3]
    assert len(metrics["history"]["loss"]) == metrics["epochs_run"] == 2
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    model = keras.saving.load_model(out / "model.keras")
    assert model.output_shape == (None, 10)

    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert _fit(out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before

    assert cli.main(["evaluate", str(out), "--data", "digits", "--batch-size", "64"]) == 0
    assert "accuracy" in capsys.readouterr().out

    from PIL import Image

    from keras_transfer.datasets import load_builtin

    x, _ = load_builtin("digits", "test", image_size=16)
    image = tmp_path / "digit.png"
    Image.fromarray(x[0]).save(image)
    assert cli.main(["predict", str(out / "model.keras"), str(image), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(image)) and line.count("class ") == 2


def test_unwritable_output_folder_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _fit(blocker / "run") == 2
    assert "cannot be written" in capsys.readouterr().err
    assert _fit(blocker) == 2
    assert "not a folder" in capsys.readouterr().err


def test_dataset_that_disagrees_with_the_task(tmp_path, capsys):
    assert _fit(tmp_path / "a", "--num-classes", "5") == 2
    err = capsys.readouterr().err
    assert "10 classes" in err and "num_classes=5" in err
    assert cli.main(["fit", "test/tiny_text", "--data", "digits", "--epochs", "1",
                     "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "(32, 32, 3)" in err and "(16,)" in err
    assert not (tmp_path / "b").exists()


def test_backend_flag_is_set_before_keras_is_imported():
    code = (
        "import sys; from keras_transfer import cli; "
        "assert 'keras' not in sys.modules; "
        "sys.exit(cli.main(['--backend', 'torch', 'list', '--filter', 'test/*']) "
        "or (0 if __import__('keras').backend.backend() == 'torch' else 3))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test/tiny_cnn" in result.stdout


def test_bad_arguments_exit_with_usage():
    with pytest.raises(SystemExit):
        cli.main(["--backend", "numpyy", "list"])


def test_a_frozen_backbone_task_trains_on_cached_features_and_reuses_them(tmp_path, capsys, monkeypatch):
    from keras_transfer import features

    calls = []
    extractor = features._Extractor.__call__
    monkeypatch.setattr(features._Extractor, "__call__", lambda self, x: calls.append(1) or extractor(self, x))
    cache = tmp_path / "cache"
    args = ["fit", "feature_extraction/mobilenetv3small", "--data", "digits", "--weights", "none",
            "--epochs", "1", "--image-size", "32", "--batch-size", "256", "--cache", str(cache)]
    keras.utils.set_random_seed(0)  # `--weights none`: the same random backbone twice
    assert cli.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "not augmented" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["features_cache"] == str(cache) and metrics["epochs_run"] == 1
    assert json.loads((cache / "train" / "manifest.json").read_text())["num_examples"] == 719
    first = len(calls)
    assert first == 3 + 1  # 719 train and 180 validation images, batches of 256

    keras.utils.set_random_seed(0)
    assert cli.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == first  # The second run ran no backbone batch.
    model = keras.saving.load_model(tmp_path / "b" / "model.keras")
    assert model.output_shape == (None, 10)


def test_cache_is_refused_for_a_task_that_trains_its_backbone(tmp_path, capsys):
    assert _fit(tmp_path / "run", "--cache", str(tmp_path / "cache")) == 2
    assert "trains its backbone" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
