"""Inputs a user can get wrong: each one is a clear error or a correct result.

Every test here is marked `bad_input`; the test run prints how many such
cases it tried and how many held (tests/conftest.py). More cases live beside
the feature they probe (test_cli.py, test_export.py, test_faults.py).
"""

import math

import keras
import numpy as np
import pytest

from keras_transfer import datasets
from keras_transfer.callbacks import StagedUnfreezing
from keras_transfer.callbacks import fit_staged
from keras_transfer.exporting import export
from keras_transfer.layers import GradientReversal
from keras_transfer.losses import MMDLoss
from keras_transfer.lr_finder import lr_find
from keras_transfer.optimizers import LayerwiseOptimizer
from keras_transfer.regularizers import L2SP
from keras_transfer.schedules import DANNDecay
from keras_transfer.schedules import DANNLambda
from keras_transfer.schedules import InverseSquareRootDecay
from keras_transfer.schedules import LinearWarmup
from keras_transfer.schedules import OneCycle

pytestmark = pytest.mark.bad_input

NAN, INF = float("nan"), float("inf")


def _dann(domain_loss_weight):
    from keras_transfer import adaptation

    features = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    return adaptation.build_dann(
        features, keras.layers.Dense(2), domain_loss_weight=domain_loss_weight
    )


def _export(atol, tmp_path):
    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)])
    return export(model, tmp_path / "m", atol=atol, format="onnx")


# (argument named in the error, builder taking the value)
HYPER_PARAMETERS = {
    "hp_lambda": lambda v, _: GradientReversal(hp_lambda=v),
    "alpha": lambda v, _: L2SP(v),
    "gamma": lambda v, _: DANNLambda(100, gamma=v),
    "beta": lambda v, _: DANNDecay(1e-3, 100, beta=v),
    "max_learning_rate": lambda v, _: OneCycle(v, 100),
    "initial_learning_rate": lambda v, _: InverseSquareRootDecay(v),
    "schedule": lambda v, _: LinearWarmup(v, 10),
    "kernel_multiplier": lambda v, _: MMDLoss(kernel_multiplier=v),
    "default_factor": lambda v, _: LayerwiseOptimizer("adam", default_factor=v),
    "lr_factor": lambda v, _: StagedUnfreezing({1: ("body", v)}),
    "domain_loss_weight": lambda v, _: _dann(v),
    "atol": _export,
    "min_lr": lambda v, _: lr_find(None, None, min_lr=v),
}


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("argument", sorted(HYPER_PARAMETERS))
def test_non_finite_hyper_parameters_are_refused(argument, value, tmp_path):
    with pytest.raises(ValueError, match=rf"{argument}.*finite.*Received: .*{argument}=-?(nan|inf)"):
        HYPER_PARAMETERS[argument](value, tmp_path)


def test_numpy_scalars_are_accepted_as_numbers():
    layer = GradientReversal(np.float32(0.5))
    assert layer.hp_lambda == 0.5 and isinstance(layer.hp_lambda, float)
    assert MMDLoss(num_kernels=np.int64(3), kernel_multiplier=np.float64(1.5)).num_kernels == 3
    assert LinearWarmup(np.float32(1e-3), np.int64(10)).warmup_steps == 10
    assert LayerwiseOptimizer("adam", [("a*", np.float32(0.1))]).groups[0][1] == pytest.approx(0.1)
    assert StagedUnfreezing({1: ("body", np.float32(0.5))}).stages[1][1] == 0.5
    # Training with a numpy lambda moves the weights like a float lambda.
    x = np.ones((4, 2), "float32")
    reversed_ = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(reversed_, x)


def _arrays(labels):
    labels = np.asarray(labels, "int64")
    return np.zeros((len(labels), 8, 8, 3), "uint8"), labels


def test_negative_labels_are_refused_by_describe_and_load():
    with pytest.raises(ValueError, match=r"class indices in \[0, inf\)\. Received: label=-1"):
        datasets.describe(_arrays([0, 1, -1]))
    with pytest.raises(ValueError, match="label=-1"):
        datasets.load(_arrays([0, -1]), num_classes=2)


def test_labels_above_num_classes_are_refused_before_training():
    with pytest.raises(ValueError, match="has 13 classes but the task expects num_classes=10"):
        datasets.load(_arrays([0, 12, 3]), num_classes=10)


def test_non_finite_images_are_refused():
    x, y = _arrays([0, 1])
    x = x.astype("float32")
    x[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"finite. Received: x\[1, 2, 3, 0\]=nan"):
        datasets.load((x, y))


def test_empty_arrays_are_refused():
    with pytest.raises(ValueError, match="at least one image"):
        datasets.describe((np.zeros((0, 8, 8, 3)), np.zeros((0,), "int64")))


def test_tfds_labels_out_of_range_stop_fit_before_a_step_on_every_backend():
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    def unlabelled(builder, *args, **kwargs):
        images = np.zeros((8, 28, 28, 1), "uint8")
        labels = np.array([3, 1, -1, 2, 0, 1, 2, 3], "int64")
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})

    with tfds.testing.mock_data(as_dataset_fn=unlabelled):
        data = datasets.load("tfds:mnist", "test", image_size=8, batch_size=4)
        model = keras.Sequential(
            [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
        )
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [w.copy() for w in model.get_weights()]
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"class indices in \[0, 10\)"):
            model.fit(data, epochs=1, verbose=0)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def _write_folder(root, classes, split="train", broken=None):
    from PIL import Image

    for name in classes:
        folder = root / split / name
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((6, 6, 3), 40 * i, "uint8")).save(folder / f"{i}.png")
    if broken:
        (root / split / classes[0] / broken).write_bytes(b"\x89PNG\r\n\x1a\n truncated")


def test_splits_with_other_class_names_are_refused(tmp_path):
    _write_folder(tmp_path, ["cat", "dog"], "train")
    _write_folder(tmp_path, ["cat", "zebra"], "test")
    train = datasets.describe(f"folder:{tmp_path}", "train")
    test = datasets.describe(f"folder:{tmp_path}", "test")
    with pytest.raises(ValueError, match="label 1: 'zebra' here, 'dog' expected"):
        test.check(class_names=train.class_names)
    train.check(class_names=("cat", "dog"))


def test_a_corrupt_image_is_named_or_skipped_and_counted(tmp_path):
    import tensorflow as tf

    _write_folder(tmp_path, ["cat", "dog"], broken="bad.png")
    spec = f"folder:{tmp_path}"
    bad = str(tmp_path / "train" / "cat" / "bad.png")
    assert datasets.find_unreadable_images(spec, "train") == [bad]
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(datasets.load(spec, "train", image_size=4, batch_size=2))
    with pytest.warns(UserWarning, match=r"Skipped 1 image\(s\).*bad.png"):
        data, info = datasets.load(
            spec, "train", image_size=4, batch_size=2, skip_bad_images=True, with_info=True
        )
    assert info.num_examples == 4 and sum(len(y) for _, y in data) == 4
    with pytest.raises(ValueError, match="only 'folder:' datasets"):
        datasets.load("digits", skip_bad_images=True)


def _tiny_model():
    inputs = keras.Input((3,))
    body = keras.layers.Dense(3, name="body")
    outputs = keras.layers.Dense(2, name="head")(body(inputs))
    model = keras.Model(inputs, outputs)
    body.trainable = False
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_a_stage_after_the_last_epoch_warns_instead_of_skipping_silently():
    x, y = np.ones((8, 3), "float32"), np.zeros(8, "int64")
    with pytest.warns(UserWarning, match=r"stage\(s\) at epoch\(s\) \[5\] never run in a fit of epochs=2"):
        _tiny_model().fit(x, y, epochs=2, verbose=0, callbacks=[StagedUnfreezing({5: "body"})])
    with pytest.warns(UserWarning, match=r"\[2\] never run in a fit of epochs=2"):
        fit_staged(_tiny_model(), {2: "body"}, x, y, epochs=2, verbose=0)


def test_epoch_sync_refuses_a_dataset_without_keyed_passes():
    with pytest.raises(ValueError, match="returned by `keras_transfer.datasets.load`"):
        datasets.EpochSync(datasets.load("digits", "test", image_size=8))


def test_check_number_message_names_value_and_bounds():
    from keras_transfer._validation import check_number

    with pytest.raises(ValueError, match=r"finite number >= 0\. Received: rate=nan"):
        check_number("rate", math.nan, minimum=0)
