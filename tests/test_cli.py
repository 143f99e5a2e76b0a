import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_transfer import _keras_compat
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


def _count_reads_of(split, monkeypatch):
    """Count the examples `keras-transfer fit` reads from `split`, as it reads them."""
    import tensorflow as tf

    from keras_transfer import datasets

    load, reads = datasets.load, []

    def counting_load(spec, **kwargs):
        loaded = load(spec, **kwargs)
        if kwargs["split"] != split:
            return loaded
        dataset, info = loaded

        def count(images, labels):
            tf.py_function(lambda: reads.append(1) or 0, [], tf.int32)
            return images, labels

        return dataset.unbatch().map(count).batch(kwargs["batch_size"]), info

    monkeypatch.setattr(datasets, "load", counting_load)
    return reads


def test_fit_writes_every_file_and_refuses_to_overwrite(tmp_path, capsys, monkeypatch):
    from sklearn.metrics import confusion_matrix
    from sklearn.metrics import f1_score

    from keras_transfer import datasets

    out = tmp_path / "run"
    test_reads = _count_reads_of("test", monkeypatch)
    assert _fit(out) == 0
    monkeypatch.undo()
    assert set(os.listdir(out)) == {
        "metrics.json", "curves.png", "confusion_matrix.png", "model.keras", "run.json",
        "saved_model", "predictions.png", "report.html",
    }
    assert os.listdir(tmp_path) == ["run"]  # No staging or checkpoint leftovers.
    metrics = json.loads((out / "metrics.json").read_text())
    # Two short epochs: the "did not learn" warning is there exactly when the
    # loss never fell below chance (ln 10).
    never_learned = min(metrics["history"]["loss"]) >= 0.99 * np.log(10)
    assert len(metrics["warnings"]) == int(never_learned)
    assert metrics["num_classes"] == 10 and metrics["input_shape"] == [16, 16, 3]
    assert metrics["class_names"] == [str(i) for i in range(10)]
    assert len(metrics["history"]["loss"]) == metrics["epochs_run"] == 2
    assert "val_macro_f1" in metrics["history"]
    # Validation is carved from train (digits has no validation split); the
    # test split is read once, after training: 180 examples, one pass.
    splits = metrics["splits"]
    assert splits["validation"] == {
        "split": "train", "carved_from_train": True, "fraction": 0.1,
        "stratified": True, "seed": 0, "examples": 72,
    }
    assert splits["train"]["examples"] == 646
    assert splits["test"] == {
        "split": "test", "carved_from_train": False, "evaluated": "once, after training",
        "examples": 180,
    }
    assert len(test_reads) == metrics["test"]["examples"] == 180
    assert set(metrics["validation"]) >= {"loss", "accuracy", "macro_f1"}
    # The test numbers are those of the saved model's predictions.
    model = keras.saving.load_model(out / "model.keras")
    assert model.output_shape == (None, 10)
    test = datasets.load("digits", "test", image_size=16, batch_size=64)
    labels = np.concatenate([y.numpy() for _, y in test])
    predicted = np.concatenate(
        [model.predict_on_batch(x.numpy()) for x, _ in test]
    ).argmax(-1)
    assert metrics["test"]["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-9)
    assert metrics["test"]["macro_f1"] == pytest.approx(
        f1_score(labels, predicted, average="macro"), abs=1e-9
    )
    assert metrics["test"]["confusion_matrix"] == confusion_matrix(labels, predicted).tolist()
    for image in ("curves.png", "confusion_matrix.png"):
        assert (out / image).read_bytes()[:4] == b"\x89PNG"
    assert "evaluated once" in capsys.readouterr().out

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
    # The model carries the digits' class names, "0" to "9".
    ranked = line[len(str(image)) + 2 :].split(", ")
    assert line.startswith(str(image)) and len(ranked) == 2
    assert all(name in map(str, range(10)) for name, _ in (r.split(": ") for r in ranked))

    # Bad inputs against the finished run: one line, exit status 2.
    for argv, names in (
        (["predict", str(out), str(tmp_path / "notes.txt")], ["notes.txt", "not a readable image"]),
        (["evaluate", str(out), "--data", "digits", "--image-size", "12"], ["--image-size 12", "16"]),
        (["export", str(out), "--out", "/proc/keras_transfer_export"], ["cannot write", "/proc"]),
        (["fit", "test/tiny_cnn", "--data", "digits", "--out", str(out), "--resume"], ["Nothing to resume"]),
    ):
        (tmp_path / "notes.txt").write_text("not an image")
        assert cli.main(argv) == 2, argv
        _assert_one_line_error(capsys, *names)


def _assert_one_line_error(capsys, *names):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)
    return err


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "argv, names",
    [
        (["fit", "test/tiny_cnn", "--data", "digits", "--out", "x", "--batch-size", "0"], ["--batch-size", "'0'"]),
        (["fit", "test/tiny_cnn", "--data", "digits", "--out", "x", "--image-size", "0"], ["--image-size", "'0'"]),
        (["fit", "test/tiny_cnn", "--data", "digits", "--out", "x", "--epochs", "-2"], ["--epochs", "'-2'"]),
        (["evaluate", "m.keras", "--data", "digits", "--batch-size", "many"], ["--batch-size", "'many'"]),
        (["predict", "m.keras", "a.png", "--top", "0"], ["--top", "'0'"]),
    ],
)
def test_bad_flag_values_are_refused_in_one_line(argv, names, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    _assert_one_line_error(capsys, *names, "expected an integer >=")


@pytest.mark.bad_input
def test_an_unknown_keras_backend_lists_the_allowed_ones(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "bogus")
    assert cli.main(["list"]) == 2
    _assert_one_line_error(capsys, "KERAS_BACKEND='bogus'", "tensorflow, jax, torch")


@pytest.mark.bad_input
def test_truncated_or_corrupt_model_files_are_named(tmp_path, capsys):
    import zipfile

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "half.keras").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp_path / "weights.keras", "w") as broken:
        for item in source.infolist():
            content = source.read(item)
            if item.filename.endswith(".h5"):
                content = content[: len(content) // 3]
            broken.writestr(item, content)
    for name, message in (("half.keras", "not a zip archive"), ("weights.keras", "truncated or corrupt")):
        assert cli.main(["export", str(tmp_path / name), "--out", str(tmp_path / "e")]) == 2
        _assert_one_line_error(capsys, name, message)
    assert sorted(os.listdir(tmp_path)) == ["half.keras", "model.keras", "weights.keras"]


@pytest.mark.bad_input
def test_a_model_for_other_classes_is_refused_by_evaluate(tmp_path, capsys):
    inputs = keras.Input((16, 16, 3), name="image")
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "three.keras")
    assert cli.main(["evaluate", str(tmp_path / "three.keras"), "--data", "digits"]) == 2
    _assert_one_line_error(capsys, "predicts 3 classes", "'digits' has 10")


def _image_folder(root, classes_by_split, broken=None):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, classes in classes_by_split.items():
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 256, (16, 16, 3)).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    if broken:
        (root / broken).write_bytes(b"\x89PNG\r\n\x1a\n cut short")


@pytest.mark.bad_input
def test_folder_splits_must_name_the_same_classes(tmp_path, capsys):
    _image_folder(tmp_path / "data", {"train": ["cat", "dog"], "test": ["cat", "zebra"]})
    args = ["fit", "test/tiny_cnn", "--data", f"folder:{tmp_path / 'data'}", "--image-size", "16",
            "--epochs", "1", "--val-fraction", "0.5", "--out", str(tmp_path / "run")]
    assert cli.main(args) == 2
    _assert_one_line_error(capsys, "'zebra' here, 'dog' expected")
    assert sorted(os.listdir(tmp_path)) == ["data"]


@pytest.mark.bad_input
def test_a_corrupt_image_is_named_or_skipped_with_a_count(tmp_path, capsys):
    _image_folder(
        tmp_path / "data", {"train": ["cat", "dog"], "test": ["cat", "dog"]}, broken="train/dog/x.png"
    )
    args = ["fit", "test/tiny_cnn", "--data", f"folder:{tmp_path / 'data'}", "--image-size", "16",
            "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.5",
            "--out", str(tmp_path / "run")]
    assert cli.main(args) == 2
    _assert_one_line_error(capsys, "Cannot decode image", str(tmp_path / "data" / "train" / "dog" / "x.png"),
                           "--skip-bad-images")
    assert sorted(os.listdir(tmp_path)) == ["data"]
    assert cli.main([*args, "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert "warning: Skipped 1 image(s)" in err and "x.png" in err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["class_names"] == ["cat", "dog"]


@pytest.mark.bad_input
def test_a_diverging_fit_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from keras_transfer import zoo

    def diverging(*args, **kwargs):
        inputs = keras.Input((16, 16, 3), name="image")
        x = keras.layers.Rescaling(float("nan"))(inputs)
        outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
        model = keras.Model(inputs, outputs)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    monkeypatch.setattr(zoo, "build", diverging)
    assert _fit(tmp_path / "run") == 2
    err = _assert_one_line_error(capsys, "Training diverged", "TerminateOnNaN")
    assert "nan" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_precision_flag_trains_mixed_and_the_saved_model_keeps_it(tmp_path, precision):
    out = tmp_path / "run"
    assert _fit(out, "--epochs", "1", "--precision", precision) == 0
    # The flag's policy is the build's only: the process' global policy is back.
    assert keras.config.dtype_policy().name == "float32"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == precision
    assert np.isfinite(metrics["history"]["loss"][0])
    model = keras.saving.load_model(out / "model.keras")
    convs = [
        layer for layer in _keras_compat.all_sublayers(model)
        if isinstance(layer, keras.layers.Conv2D)
    ]
    assert convs and all(layer.dtype_policy.name == f"mixed_{precision}" for layer in convs)
    assert all(layer.compute_dtype == precision for layer in convs)
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    logits = model.predict(np.zeros((2, 16, 16, 3), "float32"), verbose=0)
    assert logits.shape == (2, 10) and np.isfinite(logits).all()


@pytest.mark.bad_input
def test_unwritable_output_folder_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _fit(blocker / "run") == 2
    assert "cannot be written" in capsys.readouterr().err
    assert _fit(blocker) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.bad_input
def test_dataset_that_disagrees_with_the_task(tmp_path, capsys):
    assert _fit(tmp_path / "a", "--num-classes", "5") == 2
    err = capsys.readouterr().err
    assert "10 classes" in err and "--num-classes is 5" in err and "num_classes=" not in err
    assert cli.main(["fit", "test/tiny_text", "--data", "digits", "--epochs", "1",
                     "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "'test/tiny_text' takes text but dataset 'digits' holds images" in err
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


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--val-fraction", "0"], "Received: --val-fraction 0.0"),
        (["--val-fraction", "1.5"], "Received: --val-fraction 1.5"),
        (["--val-fraction", "0.001"], "Cannot carve a stratified validation split of 0.001"),
        (["--test-split", "train"], "must differ from the training split"),
        (["--test-split", "holdout"], "no split 'holdout' (--test-split holdout)"),
    ],
)
def test_bad_split_arguments_fail_before_training(tmp_path, capsys, extra, message):
    assert _fit(tmp_path / "run", *extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bad_val_fraction_from_the_console_script(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "keras-transfer")
    result = subprocess.run(
        [script, "fit", "test/tiny_cnn", "--data", "digits", "--val-fraction", "-0.2",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "`--val-fraction`. Expected a finite number > 0 and < 1. Received: --val-fraction -0.2" in result.stderr


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; checked on the tensorflow run",
)
def test_validation_is_carved_stratified_or_taken_from_the_dataset(tmp_path):
    from PIL import Image

    from keras_transfer import datasets
    from keras_transfer.cli import splits

    plan = splits.plan_splits("digits", val_fraction=0.2, seed=3)
    labels = datasets.labels("digits", "train")
    train, validation = plan.train_indices, plan.validation_indices
    assert plan.validation_indices is not None and plan.test_indices is None
    assert plan.validation == plan.train == "train" and plan.test == "test"
    assert len(np.intersect1d(train, validation)) == 0
    assert len(train) + len(validation) == len(labels)
    # Stratified: each class keeps its share of the split, within one example.
    share = np.bincount(labels[validation], minlength=10) / np.bincount(labels, minlength=10)
    assert np.all(np.abs(share - 0.2) * np.bincount(labels) <= 1.0)
    again = splits.plan_splits("digits", val_fraction=0.2, seed=3)
    other = splits.plan_splits("digits", val_fraction=0.2, seed=4)
    np.testing.assert_array_equal(again.validation_indices, validation)
    assert not np.array_equal(other.validation_indices, validation)

    # A dataset with its own validation split keeps it; nothing is carved.
    for split in ("train", "validation", "test"):
        for label, colour in (("cat", 30), ("dog", 220)):
            (tmp_path / split / label).mkdir(parents=True)
            Image.fromarray(np.full((8, 8, 3), colour, "uint8")).save(
                tmp_path / split / label / "0.png"
            )
    own = splits.plan_splits(f"folder:{tmp_path}")
    assert (own.train, own.validation, own.test) == ("train", "validation", "test")
    assert own.train_indices is None and own.validation_indices is None
    assert own.report()["validation"] == {"split": "validation", "carved_from_train": False}


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
    assert json.loads((cache / "train" / "manifest.json").read_text())["num_examples"] == 646
    first = len(calls)
    assert first == 3 + 1  # 646 train and 72 validation images (carved from train), batches of 256

    keras.utils.set_random_seed(0)
    assert cli.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == first  # The second run ran no backbone batch.
    model = keras.saving.load_model(tmp_path / "b" / "model.keras")
    assert model.output_shape == (None, 10)


def test_cache_is_refused_for_a_task_that_trains_its_backbone(tmp_path, capsys):
    assert _fit(tmp_path / "run", "--cache", str(tmp_path / "cache")) == 2
    assert "trains its backbone" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_a_run_that_never_beat_chance_says_so():
    """A finished run whose loss stayed at ln(classes) (uniform predictions) is
    not reported silently as a trained model (seen: MobileNetV3Small with
    --weights none, features ~1e-10)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("backend-independent arithmetic: checked on tensorflow")
    import importlib
    from types import SimpleNamespace

    cli_main = importlib.import_module("keras_transfer.cli.main")  # the module, not the function

    flat = {"loss": [1.0986, 1.0986, 1.0987]}
    (warning,) = cli_main._learning_warnings(flat, 3, SimpleNamespace(weights="none"))
    assert "ln 3 = 1.0986" in warning and "did not learn" in warning and "--weights none" in warning
    (warning,) = cli_main._learning_warnings(flat, 3, SimpleNamespace(weights="imagenet"))
    assert "--weights none" not in warning and "more epochs" in warning
    assert cli_main._learning_warnings({"loss": [1.0986, 0.7]}, 3, SimpleNamespace(weights="none")) == []
