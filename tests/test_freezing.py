import keras
import numpy as np
import pytest

from keras_transfer.freezing import freeze, iter_layers, select_layers, unfreeze

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _classifier():
    """A keras.applications backbone (random init, BN inside) + a head."""
    base = keras.applications.MobileNetV2(
        weights=None,
        include_top=False,
        input_shape=(32, 32, 3),
        alpha=0.35,
        pooling="avg",
    )
    _calibrate_batch_norm(base)
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(3, name="head")(base(inputs, training=False))
    return keras.Model(inputs, outputs), base


def _calibrate_batch_norm(base):
    """Sets BN moving statistics to those of the data, as pretraining would.

    With random init and BN at its initial statistics (0, 1), activations
    vanish through MobileNetV2 and the top layers get zero gradients.
    """
    norms = [
        layer for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    base(_data()[0], training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def _data(n=16):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(n, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, size=(n,))
    return x, y


def _snapshot(layers):
    return {
        (layer.name, i): keras.ops.convert_to_numpy(w).copy()
        for layer in layers
        for i, w in enumerate(layer.weights)
    }


def _fit(model, epochs=1):
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)


def _leaf_layers(model):
    return [layer for _, layer in iter_layers(model) if layer.weights and not (
        isinstance(layer, keras.Model)
    )]


def test_frozen_backbone_weights_and_bn_statistics_are_bit_identical():
    model, base = _classifier()
    freeze(model, base.name)
    assert len(model.trainable_weights) == 2  # head kernel + bias
    before = _snapshot(_leaf_layers(base))
    head_before = np.array(keras.ops.convert_to_numpy(model.get_layer("head").kernel))

    _fit(model)

    after = _snapshot(_leaf_layers(base))
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=str(key))
    head_after = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
    assert not np.array_equal(head_before, head_after)


def test_unfreezing_top_layers_then_training_changes_exactly_those():
    model, base = _classifier()
    freeze(model)
    selected = select_layers(model, 6)
    unfreeze(model, 6)
    before = _snapshot(_leaf_layers(model))

    _fit(model)

    after = _snapshot(_leaf_layers(model))
    selected_names = {layer.name for layer in selected}
    bn_names = {
        layer.name
        for layer in selected
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert bn_names, "the top 6 layers of MobileNetV2 include a BN layer"
    expected_changed = {
        key for key in before if key[0] in selected_names - bn_names
    }
    changed = {
        key for key in before if not np.array_equal(before[key], after[key])
    }
    assert changed == expected_changed
    assert ("head", 0) in changed


def test_bn_statistics_stay_put_after_unfreeze_unless_train_bn():
    model, base = _classifier()
    freeze(model)
    unfreeze(model)  # everything, BN kept in inference mode
    bn = base.get_layer("Conv_1_bn")
    assert not bn.trainable
    moving_mean = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    _fit(model)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bn.moving_mean), moving_mean
    )

    unfreeze(model, "Conv_1_bn", train_bn=True)
    assert bn.trainable
    _fit(model)
    assert not np.array_equal(
        keras.ops.convert_to_numpy(bn.moving_mean), moving_mean
    )


def test_keras_trap_training_false_alone_does_not_protect_bn():
    """Why `unfreeze` handles BN: with only `base(x, training=False)` in the
    graph, a trainable base updates its BN statistics during fit."""
    model, base = _classifier()
    base.trainable = True
    bn = base.get_layer("Conv_1_bn")
    moving_mean = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    _fit(model)
    assert not np.array_equal(
        keras.ops.convert_to_numpy(bn.moving_mean), moving_mean
    )


def test_selectors():
    model, base = _classifier()
    names = lambda sel: [layer.name for layer in select_layers(model, sel)]
    assert names(None) == [model.name]
    assert names("block_16_project*") == [
        "block_16_project",
        "block_16_project_BN",
    ]
    assert names(f"{base.name}/Conv_1") == ["Conv_1"]
    assert names("re:block_1[56]_project") == [
        "block_15_project",
        "block_16_project",
    ]
    assert names(2) == ["global_average_pooling2d", "head"]
    all_units = select_layers(model, 1.0)
    assert len(select_layers(model, 0.1)) == int(np.ceil(0.1 * len(all_units)))
    assert names(["head", 1]) == ["head"]
    assert names(["Conv_1", "head"]) == ["Conv_1", "head"]
    assert names([base.get_layer("Conv_1")]) == ["Conv_1"]
    with pytest.raises(ValueError, match="is not part of model"):
        select_layers(model, keras.layers.Dense(1, name="stranger"))


def test_unfreeze_opens_enclosing_model_without_unfreezing_siblings():
    model, base = _classifier()
    freeze(model)
    changed = unfreeze(model, "Conv_1")
    assert base.trainable and model.trainable
    assert {layer.name for layer in changed} >= {"Conv_1", base.name}
    trainable = {id(w) for w in model.trainable_weights}
    conv = base.get_layer("Conv_1")
    assert trainable == {id(w) for w in conv.trainable_weights}
    assert not base.get_layer("block_16_project").trainable


@pytest.mark.parametrize(
    "selector, message",
    [
        ("no_such_layer*", "matched no layer"),
        ("re:(", "Invalid regular expression"),
        (0, "must be in \\[1,"),
        (10_000, "must be in \\[1,"),
        (0.0, "must be in \\(0, 1\\]"),
        (1.5, "must be in \\(0, 1\\]"),
        (True, "Invalid selector"),
        ([], "empty selector list"),
        ({"a": 1}, "Invalid selector of type dict"),
    ],
)
def test_bad_selectors_raise(selector, message):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2, name="d")]
    )
    with pytest.raises(ValueError, match=message):
        freeze(model, selector)
