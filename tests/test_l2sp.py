import json

import keras
import numpy as np
import pytest

from keras_transfer.regularizers import L2SP
from keras_transfer.regularizers import apply_l2sp
from keras_transfer.regularizers import remove_l2sp


def _zero_loss(y_true, y_pred):
    return keras.ops.sum(y_pred) * 0.0


def _transfer_model():
    backbone = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(5, activation="relu"),
        ],
        name="backbone",
    )
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, name="head")(backbone(inputs))
    return keras.Model(inputs, outputs), backbone


def _numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _penalty(model):
    return sum(float(keras.ops.convert_to_numpy(x)) for x in model.losses)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 3)).astype("float32")
    return x, y


def test_penalty_equals_formula():
    model, backbone = _transfer_model()
    pretrained = apply_l2sp(model, backbone, alpha=0.3, beta=0.07)
    # BN gamma/beta count, moving statistics do not.
    assert len(pretrained) == 6
    w0 = _numpy(pretrained)
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:
        variable.assign(
            keras.ops.convert_to_numpy(variable)
            + rng.normal(size=variable.shape).astype("float32")
        )
    head = model.get_layer("head")
    expected = 0.3 / 2 * sum(
        np.sum((w - r) ** 2) for w, r in zip(_numpy(pretrained), w0)
    ) + 0.07 / 2 * sum(np.sum(w**2) for w in _numpy(head.weights))
    total = _penalty(model)
    np.testing.assert_allclose(total, expected, rtol=1e-5)


@pytest.mark.parametrize("fit_before", [False, True])
def test_gradient_pulls_towards_start_not_zero(fit_before):
    x, y = _data()
    model, backbone = _transfer_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=_zero_loss)
    if fit_before:
        # A train function traced before `apply_l2sp` must not be reused.
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    pretrained = apply_l2sp(model, backbone, alpha=0.5, beta=0.2)
    w0 = _numpy(pretrained)
    offset = [np.full(w.shape, 0.25, "float32") for w in w0]
    for variable, w, d in zip(pretrained, w0, offset):
        variable.assign(w + d)
    head = model.get_layer("head").weights
    head_before = _numpy(head)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    # One SGD step on alpha/2 ||w - w0||^2: w - w0 shrinks by (1 - lr*alpha).
    for w, r, d in zip(_numpy(pretrained), w0, offset):
        np.testing.assert_allclose(w - r, (1 - 0.1 * 0.5) * d, atol=1e-6)
    # The head decays towards zero by (1 - lr*beta).
    for w, b in zip(_numpy(head), head_before):
        np.testing.assert_allclose(w, (1 - 0.1 * 0.2) * b, atol=1e-6)


def _distance_after_training(alpha):
    x, y = _data()
    keras.utils.set_random_seed(7)
    model, backbone = _transfer_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    if alpha:
        pretrained = apply_l2sp(model, backbone, alpha=alpha, beta=0.0)
    else:
        pretrained = [v for v in backbone.trainable_variables]
    w0 = _numpy(pretrained)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    return sum(np.sum((w - r) ** 2) for w, r in zip(_numpy(pretrained), w0))


def test_training_with_l2sp_ends_closer_to_start():
    free = _distance_after_training(0.0)
    pulled = _distance_after_training(2.0)
    assert free > 0
    assert pulled < 0.8 * free, (pulled, free)


def test_frozen_weights_are_snapshotted_but_add_nothing():
    model, backbone = _transfer_model()
    backbone.trainable = False
    pretrained = apply_l2sp(model, backbone, alpha=1.0, beta=0.0)
    assert len(pretrained) == 6
    for variable in pretrained:
        variable.assign(keras.ops.convert_to_numpy(variable) + 1.0)
    assert _penalty(model) == 0.0
    backbone.trainable = True
    expected = 0.5 * sum(int(np.prod(v.shape)) for v in pretrained)
    np.testing.assert_allclose(_penalty(model), expected, rtol=1e-5)


def test_remove_and_reapply():
    model, backbone = _transfer_model()
    apply_l2sp(model, backbone, alpha=1.0, beta=1.0)
    apply_l2sp(model, backbone, alpha=0.5, beta=0.0)
    assert model.get_layer("head").kernel.regularizer is None
    assert backbone.layers[0].kernel.regularizer.alpha == 0.5
    remove_l2sp(model)
    assert model.losses == []


def test_l2sp_config_round_trip():
    reference = np.arange(6, dtype="float32").reshape(2, 3)
    regularizer = L2SP(0.2, reference=reference)
    config = json.loads(
        json.dumps(keras.saving.serialize_keras_object(regularizer))
    )
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, L2SP)
    w = np.ones((2, 3), "float32")
    np.testing.assert_allclose(
        float(restored(w)), 0.1 * np.sum((w - reference) ** 2), rtol=1e-6
    )
    np.testing.assert_allclose(float(restored(w)), float(regularizer(w)))


def test_bad_arguments_raise():
    model, backbone = _transfer_model()
    with pytest.raises(ValueError, match=r"argument `alpha`.*alpha=-1"):
        apply_l2sp(model, backbone, alpha=-1.0)
    with pytest.raises(ValueError, match=r"argument `beta`.*beta='x'"):
        apply_l2sp(model, backbone, beta="x")
    stranger = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"argument `backbone`"):
        apply_l2sp(model, stranger)
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3, kernel_regularizer="l2", name="head")(
        backbone(inputs)
    )
    with pytest.raises(ValueError, match=r"already has the regularizer"):
        apply_l2sp(keras.Model(inputs, outputs), backbone)


def test_model_with_l2sp_saves_and_reloads_without_it(tmp_path):
    model, backbone = _transfer_model()
    apply_l2sp(model, backbone, alpha=1.0, beta=1.0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert len(restored.weights) == len(model.weights)
    # Documented: the attachment is a training-time setting, not saved.
    assert restored.losses == []
