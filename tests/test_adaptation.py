import keras
import numpy as np
import pytest
from keras import ops

from keras_transfer import adaptation
from keras_transfer.schedules import DANNLambda


def _data(n_source=24, n_target=10, d=6, classes=3):
    rng = np.random.default_rng(0)
    x_source = rng.normal(size=(n_source, d)).astype("float32")
    y_source = rng.integers(0, classes, n_source)
    x_target = (rng.normal(size=(n_target, d)) + 1.5).astype("float32")
    return x_source, y_source, x_target


def _parts(d=6, classes=3):
    features = keras.Sequential(
        [keras.Input((d,)), keras.layers.Dense(8, activation="tanh")], name="features"
    )
    return features, keras.layers.Dense(classes, name="label_head")


def _batches(dataset):
    if isinstance(dataset, keras.utils.PyDataset):
        batches = [dataset[i] for i in range(len(dataset))]
        dataset.on_epoch_end()
        return batches
    return [
        keras.tree.map_structure(lambda t: np.asarray(t), batch)
        for batch in dataset.as_numpy_iterator()
    ]


def test_paired_arrays_stream_is_seeded_and_continues_across_epochs():
    x_source, y_source, x_target = _data()
    first = adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8, seed=3)
    again = adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8, seed=3)
    other = adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8, seed=4)
    assert isinstance(first, keras.utils.PyDataset)
    epoch_0, epoch_1 = _batches(first), _batches(first)
    for a, b in zip(epoch_0, _batches(again)):  # same seed: same batches, in any order asked
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(epoch_0[0][0], _batches(other)[0][0])
    assert not np.array_equal(epoch_0[0][0], epoch_1[0][0])  # reshuffled each epoch
    # Two epochs = 48 target rows from 10: passes 0-3 each use every row once.
    target = np.concatenate([x[4:] for x, _, _ in epoch_0 + epoch_1])
    for k in range(4):
        rows = {tuple(row) for row in target[10 * k : 10 * (k + 1)]}
        assert rows == set(map(tuple, x_target))
    with pytest.raises(IndexError):
        first[len(first)]


def test_paired_arrays_need_no_tensorflow():
    import subprocess
    import sys

    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("the TensorFlow backend imports TensorFlow itself")
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np, keras\n"
        "from keras_transfer import adaptation\n"
        "x = np.random.rand(12, 6).astype('float32'); y = np.arange(12) % 3\n"
        "features = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation='tanh')])\n"
        "model = adaptation.build_dann(features, keras.layers.Dense(3))\n"
        "data = adaptation.paired_dataset((x, y), x[:5], batch_size=4, num_classes=3)\n"
        "history = model.fit(data, epochs=2, verbose=0)\n"
        "assert len(history.history['loss']) == 2 and 'tensorflow' not in str(type(data))\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        env={**__import__("os").environ, "KERAS_BACKEND": backend}, timeout=300,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_paired_dataset_shapes_balance_and_cycling():
    x_source, y_source, x_target = _data()
    batches = _batches(
        adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8, seed=1)
    )
    assert len(batches) == 6  # ceil(24 / 4): the source covered once
    target_rows = []
    for x, y, weights in batches:
        assert x.shape == (8, 6)
        np.testing.assert_array_equal(y["domain"], [0, 0, 0, 0, 1, 1, 1, 1])
        np.testing.assert_array_equal(weights["label"], [2, 2, 2, 2, 0, 0, 0, 0])
        np.testing.assert_array_equal(weights["domain"], np.ones(8))
        np.testing.assert_array_equal(y["label"][4:], 0)
        target_rows.extend(map(tuple, x[4:]))
    # 24 target rows drawn from 10: the target cycles, every row is used.
    assert len(target_rows) == 24
    assert set(target_rows) == set(map(tuple, x_target))
    source_rows = np.concatenate([x[:4] for x, _, _ in batches])
    source_labels = np.concatenate([y["label"][:4] for _, y, _ in batches])
    order = [int(np.flatnonzero((x_source == row).all(1))[0]) for row in source_rows]
    assert sorted(order) == list(range(24))
    np.testing.assert_array_equal(source_labels, y_source[order])


def test_paired_dataset_from_tf_data():
    import tensorflow as tf

    x_source, y_source, x_target = _data()
    source = tf.data.Dataset.from_tensor_slices((x_source, y_source))
    target = tf.data.Dataset.from_tensor_slices((x_target, np.zeros(10)))
    batches = _batches(adaptation.paired_dataset(source, target, batch_size=4))
    assert len(batches) == 12
    assert batches[0][0].shape == (4, 6)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        adaptation.paired_dataset(source.repeat(), target, batch_size=4)
    assert len(_batches(
        adaptation.paired_dataset(source.repeat(), target, batch_size=4, steps_per_epoch=3)
    )) == 3


def test_paired_dataset_checks_tf_data_labels_while_iterating():
    import tensorflow as tf

    x_source, y_source, x_target = _data()
    target = tf.data.Dataset.from_tensor_slices(x_target)
    good = tf.data.Dataset.from_tensor_slices((x_source, y_source))
    assert len(_batches(adaptation.paired_dataset(good, target, batch_size=4, num_classes=3))) == 12
    labels = y_source.copy()
    labels[5] = 7
    bad = tf.data.Dataset.from_tensor_slices((x_source, labels))
    dataset = adaptation.paired_dataset(bad, target, batch_size=4, num_classes=3, shuffle=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 3\)[\s\S]*7"):
        _batches(dataset)
    floats = tf.data.Dataset.from_tensor_slices((x_source, y_source.astype("float32")))
    with pytest.raises(ValueError, match="integer class indices"):
        adaptation.paired_dataset(floats, target, batch_size=4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": np.zeros((5, 7), "float32")}, "same shape and dtype"),
        ({"target": np.zeros((5, 6), "float64")}, "same shape and dtype"),
        ({"target": np.zeros((0, 6), "float32")}, "at least one row"),
        ({"labels": np.full(24, 3)}, r"\[0, 3\)"),
        ({"labels": np.full(24, -1)}, "Labels must be class indices"),
        ({"labels": np.zeros(24, "float32")}, "integer class indices"),
        ({"batch_size": 7}, "batch_size"),
    ],
)
def test_paired_dataset_bad_inputs(kwargs, match):
    x_source, y_source, x_target = _data()
    with pytest.raises(ValueError, match=match):
        adaptation.paired_dataset(
            (x_source, kwargs.get("labels", y_source)),
            kwargs.get("target", x_target),
            batch_size=kwargs.get("batch_size", 8),
            num_classes=3,
        )


def _gradients(model, x, y, weights):
    """Gradient of the compiled loss w.r.t. the trainable variables."""
    backend = keras.backend.backend()

    def loss_of(predictions):
        return model.compute_loss(x=x, y=y, y_pred=predictions, sample_weight=weights)

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(model(x, training=True))
        return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
    if backend == "torch":
        model.zero_grad()
        loss_of(model(x, training=True)).backward()
        return [v.value.grad.numpy() for v in model.trainable_variables]
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def jax_loss(values):
        predictions, _ = model.stateless_call(values, non_trainable, x, training=True)
        return loss_of(predictions)

    return [np.asarray(g) for g in jax.grad(jax_loss)(trainable)]


def test_domain_gradient_reaches_features_reversed():
    x_source, y_source, x_target = _data()
    x, y, weights = _batches(
        adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8)
    )[0]
    grads = {}
    for hp_lambda in (1.0, 0.0):
        keras.utils.set_random_seed(3)
        features, head = _parts()
        model = adaptation.build_dann(
            features,
            head,
            discriminator=adaptation.default_discriminator(units=(4,), dropout=0.0),
            hp_lambda=hp_lambda,
            domain_loss_weight=1.0,
        )
        # Only the domain loss: zero the label weights.
        no_label = dict(weights, label=np.zeros_like(weights["label"]))
        grads[hp_lambda] = _gradients(model, x, y, no_label)
        ids = [id(v) for v in model.trainable_variables]
        features_kernel = ids.index(id(features.layers[-1].kernel))
        discriminator_kernel = ids.index(
            id(model.get_layer("discriminator").layers[-1].kernel)
        )
    # lambda=0 stops the domain gradient at the reversal; lambda=1 sends it on.
    assert np.abs(grads[0.0][features_kernel]).max() == 0.0
    assert np.abs(grads[1.0][features_kernel]).max() > 0.0
    np.testing.assert_allclose(
        grads[1.0][discriminator_kernel], grads[0.0][discriminator_kernel], rtol=1e-5
    )


def test_reversal_sign_against_plain_discriminator():
    """The features' domain gradient is exactly minus the un-reversed one."""
    x_source, y_source, x_target = _data()
    x, y, weights = _batches(
        adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8)
    )[0]
    no_label = dict(weights, label=np.zeros_like(weights["label"]))
    keras.utils.set_random_seed(3)
    features, head = _parts()
    model = adaptation.build_dann(
        features, head,
        discriminator=adaptation.default_discriminator(units=(4,), dropout=0.0),
        hp_lambda=1.0,
    )
    reversed_grads = _gradients(model, x, y, no_label)
    reversal = model.get_layer("gradient_reversal")
    plain = keras.Model(
        model.inputs,
        {
            "label": model.output["label"],
            "domain": model.get_layer("discriminator")(model.get_layer("features").output),
        },
    )
    plain.compile(loss=model.loss, loss_weights={"label": 1.0, "domain": 1.0})
    plain_grads = _gradients(plain, x, y, no_label)
    kernel = [id(v) for v in model.trainable_variables].index(
        id(features.layers[-1].kernel)
    )
    plain_kernel = [id(v) for v in plain.trainable_variables].index(
        id(features.layers[-1].kernel)
    )
    assert reversal.hp_lambda == 1.0
    np.testing.assert_allclose(
        reversed_grads[kernel], -plain_grads[plain_kernel], rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("builder", ["dann", "coral", "mmd"])
def test_trains_with_plain_fit_and_exports_classifier(builder, tmp_path):
    x_source, y_source, x_target = _data()
    features, head = _parts()
    if builder == "dann":
        model = adaptation.build_dann(
            features, head,
            discriminator=adaptation.default_discriminator(units=(8,)),
            hp_lambda=DANNLambda(total_steps=6),
        )
    else:
        model = getattr(adaptation, f"build_{builder}")(features, head)
    before = ops.convert_to_numpy(features.layers[-1].kernel).copy()
    history = model.fit(
        adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8),
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"]).all()
    assert "domain_loss" in history.history
    assert not np.allclose(ops.convert_to_numpy(features.layers[-1].kernel), before)
    if builder == "dann":
        assert int(ops.convert_to_numpy(model.get_layer("gradient_reversal").step)) == 6

    classifier = model.classifier
    assert [layer.name for layer in classifier.layers] == ["inputs", "features", "label_head"]
    np.testing.assert_allclose(
        classifier.predict(x_target, verbose=0),
        model.predict(x_target, verbose=0)["label"],
        rtol=1e-6,
        atol=1e-6,
    )
    path = tmp_path / "adapted.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, adaptation.AdaptationModel)
    np.testing.assert_allclose(
        loaded.classifier.predict(x_target, verbose=0),
        classifier.predict(x_target, verbose=0),
        rtol=1e-6,
        atol=1e-6,
    )


def test_bad_builder_arguments():
    features, head = _parts()
    with pytest.raises(ValueError, match="hp_lambda"):
        adaptation.build_dann(features, head, hp_lambda=-1.0)
    with pytest.raises(ValueError, match="domain_loss_weight"):
        adaptation.build_coral(features, head, domain_loss_weight=-1.0)
    with pytest.raises(ValueError, match="units"):
        adaptation.default_discriminator(units=())
    unbuilt = keras.Sequential([keras.layers.Dense(4)])
    with pytest.raises(ValueError, match="input_shape"):
        adaptation.build_mmd(unbuilt, head)
