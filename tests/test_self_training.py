"""Target self-training: entropy, MCC and FixMatch losses, their models, AdaBN."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_transfer import adaptation
from keras_transfer import losses


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _numpy_entropy(logits):
    p = _softmax(logits.astype("float64"))
    return float(np.mean(-(p * np.log(p)).sum(-1)))


def _numpy_mcc(logits, temperature=2.5):
    """Jin et al. 2020, written out with loops where the paper sums."""
    n, c = logits.shape
    p = _softmax(logits.astype("float64") / temperature)
    h = -(p * np.log(p)).sum(-1)
    w = (1 + np.exp(-h)) * n / (1 + np.exp(-h)).sum()
    confusion = np.zeros((c, c))
    for i in range(n):
        confusion += w[i] * np.outer(p[i], p[i])
    for j in range(c):
        confusion[j] /= confusion[j].sum()
    return float(sum(confusion[j, k] for j in range(c) for k in range(c) if j != k) / c)


def _numpy_fixmatch(weak, strong, threshold):
    p = _softmax(weak.astype("float64"))
    log_q = np.log(_softmax(strong.astype("float64")))
    total = 0.0
    for i in range(len(weak)):
        if p[i].max() >= threshold:
            total -= log_q[i, p[i].argmax()]
    return total / len(weak)


def _logits(n=12, c=4, seed=0, scale=2.0):
    return (np.random.default_rng(seed).normal(size=(n, c)) * scale).astype("float32")


def _value(tensor):
    return float(ops.convert_to_numpy(tensor))


def test_entropy_and_mcc_equal_their_numpy_formulas():
    logits = _logits()
    np.testing.assert_allclose(_value(losses.entropy_loss(logits)), _numpy_entropy(logits), rtol=1e-5)
    for temperature in (1.0, 2.5):
        np.testing.assert_allclose(
            _value(losses.mcc_loss(logits, temperature)),
            _numpy_mcc(logits, temperature),
            rtol=1e-5,
        )
    # Confident, one class per row, every class used: no confusion.
    one_hot = np.eye(4, dtype="float32")[np.arange(12) % 4] * 60
    assert _value(losses.mcc_loss(one_hot)) < 1e-6


def test_compiled_losses_read_only_the_target_rows():
    source, target = _logits(seed=1), _logits(seed=2)
    batch = np.concatenate([source, target])
    domain = np.concatenate([np.zeros(12), np.ones(12)]).astype("float32")
    np.testing.assert_allclose(
        _value(losses.EntropyLoss()(domain, batch)), _numpy_entropy(target), rtol=1e-5
    )
    np.testing.assert_allclose(
        _value(losses.MCCLoss()(domain, batch)), _numpy_mcc(target), rtol=1e-5
    )
    weak, strong = _logits(seed=3, scale=4.0), _logits(seed=4)
    views = np.concatenate([np.concatenate([weak, weak]), np.concatenate([strong, strong])], -1)
    expected = _numpy_fixmatch(weak, strong, 0.8)
    assert expected > 0  # some rows pass the threshold, the test is not vacuous
    np.testing.assert_allclose(
        _value(losses.FixMatchLoss(threshold=0.8)(domain, views)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        _value(losses.fixmatch_loss(weak, strong, 0.8)), expected, rtol=1e-5
    )
    no_target = np.zeros(24, "float32")
    assert _value(losses.MCCLoss()(no_target, batch)) == 0.0
    assert _value(losses.EntropyLoss()(no_target, batch)) == 0.0


def _grad(fn, x):
    """d fn(x) / dx on the running backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(x)
        with tf.GradientTape() as tape:
            value = fn(x)
        return tape.gradient(value, x).numpy()
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        fn(x).backward()
        return x.grad.numpy()
    import jax

    return np.asarray(jax.grad(fn)(x))


def test_fixmatch_pseudo_labels_carry_no_gradient():
    weak, strong = _logits(seed=3, scale=4.0), _logits(seed=4)
    both = np.concatenate([weak, strong], -1)

    def loss(views):
        return losses.fixmatch_loss(views[:, :4], views[:, 4:], 0.8)

    gradient = _grad(loss, both)
    assert np.all(gradient[:, :4] == 0)  # the weak view (pseudo-label) is a constant
    assert np.abs(gradient[:, 4:]).max() > 0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: losses.MCCLoss(temperature=0), "temperature"),
        (lambda: losses.FixMatchLoss(threshold=1.5), "threshold"),
        (lambda: adaptation.build_mcc(*_parts(), domain_loss_weight=-1.0), "domain_loss_weight"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _parts(d=6, classes=3):
    features = keras.Sequential(
        [keras.Input((d,)), keras.layers.Dense(8, activation="tanh")], name="features"
    )
    return features, keras.layers.Dense(classes, name="label_head")


def _data(n_source=24, n_target=16, d=6, classes=3):
    rng = np.random.default_rng(0)
    x_source = rng.normal(size=(n_source, d)).astype("float32")
    y_source = rng.integers(0, classes, n_source)
    x_target = (rng.normal(size=(n_target, d)) + 1.5).astype("float32")
    return x_source, y_source, x_target


@pytest.mark.parametrize("builder", ["entropy_minimization", "mcc", "fixmatch"])
def test_self_training_models_train_with_plain_fit(builder):
    x_source, y_source, x_target = _data()
    features, head = _parts()
    options = {"augmentation": keras.layers.GaussianNoise(0.5)} if builder == "fixmatch" else {}
    if builder == "fixmatch":
        options["threshold"] = 0.0  # every target row gets a pseudo-label
    model = getattr(adaptation, f"build_{builder}")(features, head, **options)
    before = ops.convert_to_numpy(features.layers[-1].kernel).copy()
    history = model.fit(
        adaptation.paired_dataset((x_source, y_source), x_target, batch_size=8),
        epochs=2,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["domain_loss"][-1] > 0
    assert not np.allclose(ops.convert_to_numpy(features.layers[-1].kernel), before)
    # The classifier is compiled: evaluate works as it comes.
    loss, accuracy = model.classifier.evaluate(x_source, y_source, verbose=0)
    logits = ops.convert_to_numpy(model.classifier.predict(x_source, verbose=0))
    assert np.isfinite(loss)
    assert accuracy == pytest.approx(np.mean(np.argmax(logits, -1) == y_source))


def _conv_bn_model():
    """A BN layer at the top and two inside a nested model, as AdaBN meets them."""
    inner_inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv_a")(inner_inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(x)
    x = keras.layers.BatchNormalization(name="bn_b")(x)
    inner = keras.Model(inner_inputs, keras.layers.GlobalAveragePooling2D()(x), name="inner")
    inputs = keras.Input((4, 4, 3))
    features = keras.layers.Dense(6, name="dense")(inner(inputs))
    outputs = keras.layers.Dense(3, name="logits")(
        keras.layers.BatchNormalization(name="bn_top")(features)
    )
    return keras.Model(inputs, outputs), inner


def test_adabn_changes_only_batch_norm_statistics_to_numpy_target_moments():
    model, inner = _conv_bn_model()
    x_target = (np.random.default_rng(0).normal(size=(37, 4, 4, 3)) * 3 + 2).astype("float32")
    before = {v.path: ops.convert_to_numpy(v).copy() for v in model.weights}
    assert adaptation.adapt_batch_norm(model, x_target, batch_size=8) == 3
    after = {v.path: ops.convert_to_numpy(v) for v in model.weights}
    changed = {path for path in before if not np.array_equal(before[path], after[path])}
    batch_norms = [inner.get_layer("bn_a"), inner.get_layer("bn_b"), model.get_layer("bn_top")]
    assert changed == {
        v.path for layer in batch_norms for v in (layer.moving_mean, layer.moving_variance)
    }

    def activations(model_inputs, tensor, x):
        return np.asarray(keras.Model(model_inputs, tensor).predict(x, verbose=0), "float64")

    # Each BN holds the mean / variance (numpy, biased) of its input on the
    # whole target set, computed with the BN layers before it adapted.
    conv_a = activations(inner.inputs, inner.get_layer("conv_a").output, x_target)
    conv_b = activations(inner.inputs, inner.get_layer("conv_b").output, x_target)
    dense = activations(model.inputs, model.get_layer("dense").output, x_target)
    for layer, values in (
        (inner.get_layer("bn_a"), conv_a.reshape(-1, 5)),
        (inner.get_layer("bn_b"), conv_b.reshape(-1, 4)),
        (model.get_layer("bn_top"), dense),
    ):
        np.testing.assert_allclose(
            ops.convert_to_numpy(layer.moving_mean), values.mean(0), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            ops.convert_to_numpy(layer.moving_variance), values.var(0), rtol=1e-4, atol=1e-5
        )


def test_adabn_refuses_models_it_cannot_adapt():
    features, head = _parts()
    plain = keras.Sequential([features, head])
    with pytest.raises(ValueError, match="no|none"):
        adaptation.adapt_batch_norm(plain, np.zeros((4, 6), "float32"))
    model, _ = _conv_bn_model()
    with pytest.raises(ValueError, match="x_target"):
        adaptation.adapt_batch_norm(model, np.zeros((1, 4, 4, 3), "float32"))
