import keras
import numpy as np
import pytest
from keras import ops

from keras_transfer.losses import CoralLoss
from keras_transfer.losses import MMDLoss
from keras_transfer.losses import coral_loss
from keras_transfer.losses import mmd_loss


def _numpy_coral(source, target):
    d = source.shape[1]
    difference = np.cov(source, rowvar=False) - np.cov(target, rowvar=False)
    return np.sum(difference**2) / (4 * d * d)


def _numpy_mmd(source, target, num_kernels=5, multiplier=2.0, unbiased=False):
    joint = np.concatenate([source, target]).astype("float64")
    distances = ((joint[:, None] - joint[None]) ** 2).sum(-1)
    n = len(joint)
    base = distances.sum() / (n * n - n) / multiplier ** (num_kernels // 2)
    kernel = sum(np.exp(-distances / (base * multiplier**i)) for i in range(num_kernels))
    kernel /= num_kernels
    ns = len(source)
    blocks = kernel[:ns, :ns], kernel[ns:, ns:], kernel[:ns, ns:]
    if unbiased:
        within = [
            (b.sum() - np.trace(b)) / (len(b) * (len(b) - 1)) for b in blocks[:2]
        ]
    else:
        within = [b.mean() for b in blocks[:2]]
    return within[0] + within[1] - 2 * blocks[2].mean()


def _sample(shift, n=32, d=6, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(n, d)).astype("float32")
    target = (rng.normal(size=(n, d)) * (1 + shift) + shift).astype("float32")
    return source, target


def _value(tensor):
    return float(ops.convert_to_numpy(tensor))


@pytest.mark.parametrize("loss_fn", [coral_loss, mmd_loss])
def test_zero_for_identical_batches(loss_fn):
    source, _ = _sample(0.0)
    assert abs(_value(loss_fn(source, source))) < 1e-6


@pytest.mark.parametrize("loss_fn", [coral_loss, mmd_loss])
def test_positive_and_growing_with_shift(loss_fn):
    values = [_value(loss_fn(*_sample(shift))) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values[1] > 0
    assert values == sorted(values), values


def test_coral_matches_numpy():
    source, target = _sample(0.7, n=20, d=5, seed=3)
    np.testing.assert_allclose(
        _value(coral_loss(source, target[:13])),
        _numpy_coral(source, target[:13]),
        rtol=1e-4,
    )


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_mmd_matches_numpy(estimator):
    source, target = _sample(0.7, n=20, d=5, seed=4)
    np.testing.assert_allclose(
        _value(mmd_loss(source, target[:11], estimator=estimator)),
        _numpy_mmd(source, target[:11], unbiased=estimator == "unbiased"),
        rtol=1e-4,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "loss, loss_fn",
    [(CoralLoss(), coral_loss), (MMDLoss(estimator="unbiased"), mmd_loss)],
)
def test_loss_class_uses_domain_mask(loss, loss_fn):
    source, target = _sample(1.0, n=8, d=4)
    mixed = np.stack([source[0], target[0], source[1], target[1], *source[2:], *target[2:]])
    domains = np.array([0, 1, 0, 1] + [0] * 6 + [1] * 6, "float32")[:, None]
    reordered = (mixed[domains[:, 0] == 0], mixed[domains[:, 0] == 1])
    kwargs = {"estimator": "unbiased"} if loss_fn is mmd_loss else {}
    np.testing.assert_allclose(
        _value(loss(domains, mixed)), _value(loss_fn(*reordered, **kwargs)), rtol=1e-5
    )


@pytest.mark.parametrize("loss", [CoralLoss(), MMDLoss(), MMDLoss(estimator="unbiased")])
@pytest.mark.parametrize("domains", [[0, 0, 0], [1, 1, 1], [0, 1, 1], [0, 1]])
def test_no_nan_on_tiny_or_one_sided_batches(loss, domains):
    features = np.arange(len(domains) * 3, dtype="float32").reshape(len(domains), 3)
    value = _value(loss(np.array(domains, "float32"), features))
    assert np.isfinite(value)
    if len(set(domains)) == 1:
        assert value == 0.0


def test_gradients_are_finite_for_identical_rows():
    features = keras.Variable(np.ones((4, 3), "float32"))
    domains = np.array([0, 0, 1, 1], "float32")
    for loss in (CoralLoss(), MMDLoss()):
        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            grad = np.asarray(jax.grad(lambda f: loss(domains, f))(features.value))
        elif backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                value = loss(domains, features.value)
            grad = tape.gradient(value, features.value).numpy()
        else:
            import torch

            f = torch.ones((4, 3), requires_grad=True)
            loss(domains, f).backward()
            grad = f.grad.numpy()
        assert np.isfinite(grad).all()


def test_serialization_round_trip():
    loss = MMDLoss(num_kernels=3, kernel_multiplier=1.5, estimator="unbiased")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, MMDLoss)
    assert (restored.num_kernels, restored.kernel_multiplier, restored.estimator) == (
        3, 1.5, "unbiased",
    )
    assert isinstance(keras.losses.deserialize(keras.losses.serialize(CoralLoss())), CoralLoss)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_kernels": 0}, "num_kernels"),
        ({"kernel_multiplier": 0.0}, "kernel_multiplier"),
        ({"estimator": "linear"}, "estimator"),
    ],
)
def test_invalid_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MMDLoss(**kwargs)
