"""Train small transfer models on 2 virtual CPU devices; print a JSON report.

Run by tests/test_distribution.py in a fresh process, because the device
count must be fixed before JAX or TensorFlow initialise:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/distributed_worker.py
    KERAS_BACKEND=tensorflow python tests/distributed_worker.py

JAX uses `keras.distribution.DataParallel`, TensorFlow `MirroredStrategy`.
The transfer model's backbone is a tiny conv + BN net; pass `--mobilenet` for
MobileNetV2 (alpha 0.35, 32 px; about a minute per backend on 2 CPUs).
"""

import contextlib
import json
import os
import sys

BACKEND = os.environ["KERAS_BACKEND"]

if BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_transfer import datasets  # noqa: E402

BATCH_SIZE = 16
STEPS = 4


def tiny_backbone():
    conv_input = keras.Input((32, 32, 3))
    x = conv_input
    for index, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, strides=2, use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU()(x)
    return keras.Model(conv_input, x, name="tiny_backbone")


def mobilenet_backbone():
    return keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )


def transfer_model(backbone):
    """A backbone fully fine-tuned (BatchNormalization training too) + head.

    Returns the compiled model and the variables to watch. BN trains here on
    purpose: a random-init backbone with frozen BN statistics outputs
    near-zero features, and replicas must agree on the moving statistics.
    """
    images = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1)(images)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    head = keras.layers.Dense(10, name="logits")
    model = keras.Model(images, head(x))
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    first_conv, first_bn = ("Conv1", "bn_Conv1") if backbone.name != "tiny_backbone" else ("conv0", "bn0")
    watched = {
        "head_kernel": head.kernel,
        "backbone_kernel": backbone.get_layer(first_conv).kernel,
        "bn_moving_mean": backbone.get_layer(first_bn).moving_mean,
    }
    return model, watched


def zoo_tiny_model():
    from keras_transfer import zoo

    model = zoo.build("test/tiny_cnn", num_classes=10, weights=None)
    return model, {"head_kernel": model.trainable_variables[-2]}


def variable_layout(variable):
    """How a variable is placed: devices holding it, and whether each has it all."""
    if BACKEND == "jax":
        sharding = variable.value.sharding
        return {"devices": len(sharding.device_set), "replicated": bool(sharding.is_fully_replicated)}
    value = variable.value
    replicas = getattr(value, "values", (value,))
    copies = [np.asarray(r) for r in replicas]
    return {
        "devices": len({r.device for r in replicas}),
        "replicated": all(np.array_equal(copies[0], c) for c in copies),
        "type": type(value).__name__,
    }


def train(build, make_scope):
    x, y = datasets.load_builtin("digits", "train", image_size=32)
    x, y = x[: BATCH_SIZE * STEPS].astype("float32"), y[: BATCH_SIZE * STEPS]
    with make_scope():
        model, watched = build()
    before = {name: np.array(keras.ops.convert_to_numpy(v)) for name, v in watched.items()}
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=3, shuffle=False, verbose=0)
    return {
        "losses": [float(v) for v in history.history["loss"]],
        "change": {
            name: float(np.max(np.abs(keras.ops.convert_to_numpy(v) - before[name])))
            for name, v in watched.items()
        },
        "layout": {name: variable_layout(v) for name, v in watched.items()},
    }


def main():
    if BACKEND == "jax":
        import jax

        devices = keras.distribution.list_devices("cpu")
        distribution = keras.distribution.DataParallel(devices=devices)
        keras.distribution.set_distribution(distribution)
        data_layout = distribution.get_data_layout((BATCH_SIZE, 32, 32, 3))
        report = {
            "devices": len(jax.devices()),
            "replicas": len(devices),
            "data_axes": list(data_layout.axes),
        }
        make_scope = contextlib.nullcontext
    else:
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        report = {
            "devices": len(tf.config.list_logical_devices("CPU")),
            "replicas": strategy.num_replicas_in_sync,
        }
        make_scope = strategy.scope
    backbone = mobilenet_backbone if "--mobilenet" in sys.argv else tiny_backbone
    report["transfer"] = train(lambda: transfer_model(backbone()), make_scope)
    report["zoo_tiny_cnn"] = train(zoo_tiny_model, make_scope)
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
