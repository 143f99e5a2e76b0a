"""The CLI on the data people have: class-per-folder trees, CSV text, class names.

The subprocess tests call `python -m keras_transfer.cli` as a user does; they
run on JAX and torch (the TensorFlow run checks the backend-independent
planning instead).
"""

import csv
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_transfer import cli
from keras_transfer import datasets

_SUBPROCESS_BACKENDS = ("jax", "torch")
needs_jax_or_torch = pytest.mark.skipif(
    keras.backend.backend() not in _SUBPROCESS_BACKENDS,
    reason="the CLI subprocess runs are checked on jax and torch",
)
backend_independent = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; checked on the tensorflow run",
)


def _flat_folder(root, per_class=10):
    """`root/cat`, `root/dog`: dark and bright 16 px images, no split folders."""
    from PIL import Image

    rng = np.random.RandomState(0)
    for name, level in (("cat", 40), ("dog", 210)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(level, 20, (16, 16, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _text_csv(path, rows=40, integer_labels=False):
    words = {"pos": "great fun loved wonderful", "neg": "boring awful hated terrible"}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = ("neg", "pos")[i % 2]
            writer.writerow(
                [f"{words[label]} {i}", str(i % 2) if integer_labels else label]
            )
    return path


def _cli(*argv, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "keras_transfer.cli", *argv],
        capture_output=True, text=True, timeout=600, cwd=cwd,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend(), **(env or {})},
    )


@needs_jax_or_torch
def test_a_class_per_folder_tree_fits_evaluates_and_predicts_with_names(tmp_path, capsys):
    _flat_folder(tmp_path / "pets")
    fit = _cli(
        "fit", "test/tiny_cnn", "--data", "folder:pets", "--epochs", "1",
        "--image-size", "16", "--batch-size", "8", "--out", "run", cwd=tmp_path,
    )
    assert fit.returncode == 0, fit.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["class_names"] == ["cat", "dog"]
    splits = metrics["splits"]
    # 20 images: 4 carved for test (0.2, 2 per class), then 2 of the other
    # 16 for validation (0.1), stratified; the rest trains.
    assert splits["test"]["carved_from_train"] and splits["test"]["fraction"] == 0.2
    assert splits["test"]["examples"] == metrics["test"]["examples"] == 4
    assert splits["validation"]["examples"] == 2 and splits["train"]["examples"] == 14
    assert sum(map(sum, metrics["test"]["confusion_matrix"])) == 4
    assert [sum(row) for row in metrics["test"]["confusion_matrix"]] == [2, 2]

    # evaluate rescores the very test images the run held out.
    evaluate = _cli("evaluate", "run", "--data", "folder:pets", cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    assert "held out by the run (4 examples)" in evaluate.stdout
    # Per class, by the folder's class names: 2 test images of each.
    assert re.search(r"^  cat: [0-2]/2 right", evaluate.stdout, re.MULTILINE)
    assert re.search(r"^  dog: [0-2]/2 right", evaluate.stdout, re.MULTILINE)
    reported = evaluate.stdout.strip().splitlines()[-1]
    assert f"'accuracy': {metrics['test']['accuracy']}" in reported

    # The saved model carries its class names: predict prints them.
    predict = _cli("predict", "run/model.keras", "pets/cat/0.png", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    line = predict.stdout.strip().splitlines()[-1]
    assert line.startswith("pets/cat/0.png: ") and "cat: " in line and "dog: " in line
    assert "class " not in line

    # A split that is not there names the flag, not a Python argument.
    pets, run = f"folder:{tmp_path / 'pets'}", str(tmp_path / "run")
    assert cli.main(["evaluate", run, "--data", pets, "--split", "test"]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert "--split test" in error and "split=None" not in error
    # Other data than the run's, a tree without split folders (the README's
    # walk-through): all of it is scored.
    assert cli.main(["evaluate", run, "--data", pets]) == 0
    assert "all of it (no split folders) (20 examples)" in capsys.readouterr().out
    # Split folders, but no test split: says what to pass.
    _flat_folder(tmp_path / "split" / "train")
    assert cli.main(["evaluate", run, "--data", f"folder:{tmp_path / 'split'}"]) == 2
    assert "Pass --split NAME, or as MODEL" in capsys.readouterr().err


@needs_jax_or_torch
def test_messages_name_flags_and_pipes_closed_early_exit_quietly(tmp_path):
    _flat_folder(tmp_path / "pets")
    # Offline (an unreachable proxy): the default --weights imagenet fails in
    # one line that says how to run without a download, and leaves no folder.
    offline = _cli(
        "fit", "image_classification/mobilenetv3small", "--data", "folder:pets",
        "--image-size", "32", "--epochs", "4", "--out", "run", cwd=tmp_path,
        env={"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
             "KERAS_HOME": str(tmp_path / "keras_home")},
    )
    assert offline.returncode == 2
    last = offline.stderr.strip().splitlines()[-1]
    assert "Traceback" not in offline.stderr
    assert "Could not download the pretrained weights" in last
    assert "--weights none" in last and "--weights PATH" in last
    assert not (tmp_path / "run").exists()
    assert sorted(os.listdir(tmp_path)) == ["keras_home", "pets"]

    listing = subprocess.Popen(
        [sys.executable, "-m", "keras_transfer.cli", "list"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    first = listing.stdout.readline()  # `keras-transfer list | head -1`
    listing.stdout.close()
    _, errors = listing.communicate(timeout=300)
    assert first and listing.returncode == 0
    assert b"BrokenPipeError" not in errors and b"Traceback" not in errors


def _fit_in_process(tmp_path, *extra, data="digits"):
    return cli.main(
        ["fit", "test/tiny_cnn", "--data", data, "--epochs", "1", "--image-size", "16",
         "--batch-size", "64", "--out", str(tmp_path / "run"), *extra]
    )


def test_a_wrong_num_classes_names_the_flag(tmp_path, capsys):
    assert _fit_in_process(tmp_path, "--num-classes", "4") == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert "--num-classes is 4" in error and "pass --num-classes 10" in error
    assert "num_classes=" not in error and not (tmp_path / "run").exists()


def test_export_onto_an_existing_path_names_the_overwrite_flag(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert cli.main(["export", str(tmp_path / "model.keras"), "--out", str(tmp_path / "taken")]) == 2
    error = capsys.readouterr().err
    assert "Pass --overwrite" in error and "overwrite=True" not in error


def test_info_describes_the_logits_head_and_what_trains(capsys):
    assert cli.main(["info", "test/tiny_cnn"]) == 0
    out = capsys.readouterr().out
    assert "softmax" not in out
    assert "output: logits (ClassificationHead, activation=None)" in out
    assert "trainable: True" in out
    assert "logits head, all trainable" in out
    model = __import__("keras_transfer.zoo", fromlist=["build"]).build(
        "test/tiny_cnn", 3, weights=None, input_shape=(16, 16, 3)
    )
    assert all(layer.trainable for layer in model.layers)
    assert model.layers[-1].classifier.activation is keras.activations.linear


def test_fit_on_a_text_csv_then_evaluate(tmp_path, capsys):
    _text_csv(tmp_path / "reviews.csv")
    run = str(tmp_path / "run")
    data = f"csv:{tmp_path / 'reviews.csv'}"
    assert cli.main(
        ["fit", "test/tiny_text", "--data", data, "--epochs", "2", "--batch-size", "8",
         "--out", run]
    ) == 0
    metrics = json.loads(open(os.path.join(run, "metrics.json")).read())
    assert metrics["class_names"] == ["neg", "pos"]
    assert metrics["input_shape"] == [16]  # Hashed word ids, the task's length.
    assert metrics["splits"]["test"]["examples"] == 8
    capsys.readouterr()
    assert cli.main(["evaluate", run, "--data", data]) == 0
    out = capsys.readouterr().out
    assert "held out by the run (8 examples)" in out
    assert "  neg: " in out and "  pos: " in out
    model = keras.saving.load_model(os.path.join(run, "model.keras"))
    assert model.get_layer("head").class_names == ("neg", "pos")


def test_class_names_are_checked_and_survive_a_fresh_process(tmp_path):
    from keras_transfer import zoo

    with pytest.raises(ValueError, match="Expected 3 strings for num_classes=3"):
        zoo.build("test/tiny_cnn", 3, weights=None, class_names=["a", "b"])
    binary = zoo.build("test/tiny_cnn", 1, weights=None, class_names=["no", "yes"])
    assert binary.get_layer("head").class_names == ("no", "yes")
    model = zoo.build("test/tiny_cnn", 3, weights=None, input_shape=(16, 16, 3),
                      class_names=("ant", "bee", "cow"))
    path = str(tmp_path / "m.keras")
    model.save(path)
    code = (
        "import sys, keras_transfer, keras; "
        "from keras_transfer.heads import find_head; "
        "print(find_head(keras.saving.load_model(sys.argv[1])).class_names)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "('ant', 'bee', 'cow')"


@backend_independent
def test_csv_text_loads_by_name_or_index_as_strings_or_hashed_ids(tmp_path):
    path = _text_csv(tmp_path / "t.csv", rows=6)
    info = datasets.describe(f"csv:{path}", None)
    assert (info.num_classes, info.class_names, info.image_shape, info.num_examples) == (
        2, ("neg", "pos"), (), 6
    )
    np.testing.assert_array_equal(datasets.labels(f"csv:{path}", None), [0, 1] * 3)
    texts, labels = next(iter(datasets.load(f"csv:{path}", None, batch_size=6)))
    assert texts.numpy()[1] == b"great fun loved wonderful 1"
    ids, _ = next(iter(datasets.load(f"csv:{path}", None, batch_size=6, token_ids=(50, 8))))
    ids = ids.numpy()
    assert ids.shape == (6, 8) and ids.dtype == np.int32
    # Five words, hashed into [1, 50), then zero padding; one word, one id.
    assert np.all((ids[:, :5] >= 1) & (ids[:, :5] < 50)) and np.all(ids[:, 5:] == 0)
    assert ids[0, 0] == ids[2, 0] and ids[1, 0] == ids[3, 0]
    indexed = _text_csv(tmp_path / "i.csv", rows=4, integer_labels=True)
    assert datasets.describe(f"csv:{indexed}", None).class_names == ("0", "1")
    with pytest.raises(ValueError, match="read whole with split=None"):
        datasets.describe(f"csv:{path}", "train")
    with pytest.raises(ValueError, match="text dataset, which is not augmented"):
        datasets.load(f"csv:{path}", None, augment=True)
    (tmp_path / "bad.csv").write_text("sentence,label\nhi,a\n")
    with pytest.raises(ValueError, match="columns 'text' and 'label'"):
        datasets.describe(f"csv:{tmp_path / 'bad.csv'}", None)


@backend_independent
def test_tfds_text_datasets_load_as_strings():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        info = datasets.describe("tfds:imdb_reviews", "train")
        assert info.image_shape == () and info.class_names == ("neg", "pos")
        texts, labels = next(iter(datasets.load("tfds:imdb_reviews", "train", batch_size=3)))
    assert texts.dtype.name == "string" and texts.shape == (3,)
    assert set(labels.numpy()) <= {0, 1}


@backend_independent
def test_unsplit_data_gets_a_stratified_seeded_test_split_carved(tmp_path):
    from keras_transfer.cli import splits

    _flat_folder(tmp_path / "pets")
    plan = splits.plan_splits("folder:" + str(tmp_path / "pets"), seed=1, test_fraction=0.3)
    assert (plan.train, plan.validation, plan.test) == (None, None, None)
    labels = datasets.labels("folder:" + str(tmp_path / "pets"), None)
    parts = (plan.train_indices, plan.validation_indices, plan.test_indices)
    assert sorted(np.concatenate(parts)) == list(range(20))
    assert np.bincount(labels[plan.test_indices]).tolist() == [3, 3]
    again = splits.plan_splits("folder:" + str(tmp_path / "pets"), seed=1, test_fraction=0.3)
    other = splits.plan_splits("folder:" + str(tmp_path / "pets"), seed=2, test_fraction=0.3)
    np.testing.assert_array_equal(again.test_indices, plan.test_indices)
    assert not np.array_equal(other.test_indices, plan.test_indices)
    report = plan.report()
    assert report["test"]["fraction"] == 0.3 and report["test"]["examples"] == 6
    # A dataset with a test split keeps it; an explicit missing split is named.
    assert splits.plan_splits("digits").test_indices is None
    with pytest.raises(ValueError, match=r"no split 'holdout' \(--test-split holdout\)"):
        splits.plan_splits("digits", test_split="holdout")
    with pytest.raises(ValueError, match="leave out --train-split"):
        splits.plan_splits("folder:" + str(tmp_path / "pets"), train_split="train")


@needs_jax_or_torch
def test_a_saved_image_classification_zoo_model_is_evaluated_and_predicted_by_the_cli(tmp_path):
    """The model carries `ImageNetPreprocessing` and `ClassificationHead`: the
    CLI process loads it with nothing imported by hand (issue: it could not)."""
    from keras_transfer import zoo

    model = zoo.build(
        "image_classification/mobilenetv3small", 10, weights=None, input_shape=(32, 32, 3)
    )
    model.save(tmp_path / "zoo.keras")
    evaluate = _cli(
        "evaluate", "zoo.keras", "--data", "digits", "--split", "test", cwd=tmp_path
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert "digits split 'test'" in evaluate.stdout and "'macro_f1'" in evaluate.stdout
    x, _ = datasets.load_builtin("digits", "test", image_size=32)
    keras.utils.save_img(tmp_path / "digit.png", x[0])
    predict = _cli("predict", "zoo.keras", "digit.png", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    assert predict.stdout.strip().splitlines()[-1].startswith("digit.png: ")


@needs_jax_or_torch
def test_flag_errors_text_data_and_info_as_users_call_them(tmp_path):
    """Items the in-process tests above check, once more through the command line,
    and `predict` on texts."""
    # A wrong --num-classes: one line naming the flag, exit 2, no run folder.
    wrong = _cli(
        "fit", "test/tiny_cnn", "--data", "digits", "--num-classes", "4", "--epochs", "1",
        "--out", "run", cwd=tmp_path,
    )
    assert wrong.returncode == 2, wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1 and "--num-classes is 4" in wrong.stderr
    assert not (tmp_path / "run").exists()
    # Export onto an existing path names --overwrite.
    (tmp_path / "taken").write_text("x")
    export = _cli("export", "model.keras", "--out", "taken", cwd=tmp_path)
    assert export.returncode == 2 and "--overwrite" in export.stderr
    # Text data from a csv file trains a text task, class names kept.
    _text_csv(tmp_path / "reviews.csv")
    text = _cli(
        "fit", "test/tiny_text", "--data", "csv:reviews.csv", "--epochs", "1",
        "--batch-size", "8", "--out", "text_run", cwd=tmp_path,
    )
    assert text.returncode == 0, text.stderr
    metrics = json.loads((tmp_path / "text_run" / "metrics.json").read_text())
    assert metrics["class_names"] == ["neg", "pos"] and metrics["test"]["examples"] == 8
    # predict takes texts for a text run, tokenized as in training, and names the classes.
    said = _cli("predict", "text_run", "great fun loved it", "boring awful", cwd=tmp_path)
    assert said.returncode == 0, said.stderr
    lines = said.stdout.strip().splitlines()[-2:]
    assert lines[0].startswith("great fun loved it: ") and lines[1].startswith("boring awful: ")
    assert all("neg: " in line and "pos: " in line for line in lines)
    bare = _cli("predict", "text_run/model.keras", "great", cwd=tmp_path)
    assert bare.returncode == 2 and "output folder as MODEL" in bare.stderr
    # info says what the tiny CNN is: a logits head, everything trainable.
    info = _cli("info", "test/tiny_cnn", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "softmax" not in info.stdout and "trainable: True" in info.stdout
    assert "output: logits (ClassificationHead, activation=None)" in info.stdout
