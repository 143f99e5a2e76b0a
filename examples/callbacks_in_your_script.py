"""Drop keras-transfer pieces into an ordinary Keras fine-tuning script.

    KERAS_BACKEND=torch python examples/callbacks_in_your_script.py

Expected result: as written (random weights, `weights=None`) the frozen
features carry no signal: test accuracy stays at chance, 0.10 measured on
TensorFlow (loss ln 10). Real use needs `weights="imagenet"` (not measured
here: no download).

Smoke mode (offline, seconds: 64 training images, 3 epochs):

    python examples/callbacks_in_your_script.py --smoke

Your model, your `compile`, your `fit`: keras-transfer adds BN-correct
freezing and a `StagedUnfreezing` callback that unfreezes the backbone's top
inside the same `fit` call, on TensorFlow, JAX and PyTorch.
"""

import argparse

import keras

from keras_transfer import freezing
from keras_transfer.callbacks import StagedUnfreezing
from keras_transfer.datasets import load_builtin

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")
smoke = parser.parse_args().smoke

x, y = load_builtin("digits", "train", image_size=32)
x_test, y_test = load_builtin("digits", "test", image_size=32)
if smoke:
    x, y, x_test, y_test = x[:64], y[:64], x_test[:32], y_test[:32]

backbone = keras.applications.MobileNetV3Small(
    include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
)  # weights="imagenet" in real use
freezing.freeze(backbone)  # BatchNormalization stays in inference mode.

inputs = keras.Input((32, 32, 3))
outputs = keras.layers.Dense(10)(backbone(inputs, training=False))
model = keras.Model(inputs, outputs)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# Early stopping watches the last 10% of the training data, never the test split.
model.fit(
    x, y, validation_split=0.1, epochs=3 if smoke else 4, batch_size=64,
    callbacks=[
        # Epoch 2: unfreeze the last 30 layers of the backbone, in this same fit.
        StagedUnfreezing({2: 30}, target=backbone, verbose=1),
        keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True),
    ],
)
print(model.evaluate(x_test, y_test, return_dict=True, verbose=0))  # once, at the end
