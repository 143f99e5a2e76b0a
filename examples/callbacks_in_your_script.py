"""Drop keras-transfer pieces into an ordinary Keras fine-tuning script.

    KERAS_BACKEND=torch python examples/callbacks_in_your_script.py

Smoke mode (offline, seconds: 64 source and 50 target images, 5 epochs, the
unfreezing stage included):

    python examples/callbacks_in_your_script.py --smoke

Your model, your `compile`, your `fit`: keras-transfer adds BN-correct
freezing and a `StagedUnfreezing` callback that unfreezes the backbone's top
inside the same `fit` call, on TensorFlow, JAX and PyTorch.

Offline, a small CNN trained on "digits" for a few seconds stands in for a
pretrained backbone (`keras.applications.MobileNetV3Small(weights="imagenet")`
in real use); the script fine-tunes it on 200 labelled "digits-rotated" images
(each digit rotated by 20 to 45 degrees; see `keras_transfer.datasets.load_builtin`).

Expected: test accuracy about 0.65-0.75 (measured 0.704 on jax, seed 0; early
stopping kept epoch 19 of 20). On "digits-m" (colour photo backgrounds) the same
script stopped early at 0.14: 200 labels are too few for that domain gap.
"""

import argparse

import keras
from sklearn.model_selection import train_test_split

from keras_transfer import freezing
from keras_transfer.callbacks import StagedUnfreezing
from keras_transfer.datasets import load_builtin
from keras_transfer.models import cnn_features

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")
smoke = parser.parse_args().smoke

EXPECTED = "about 0.65-0.75"
keras.utils.set_random_seed(0)

# Stand-in for a pretrained backbone: a small CNN trained on the source digits.
backbone = cnn_features((32, 32, 3), filters=(16, 32, 64))
pretraining = keras.Sequential([backbone, keras.layers.Dense(10)])
pretraining.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)
source_x, source_y = load_builtin("digits", "train", image_size=32)
if smoke:
    source_x, source_y = source_x[:64], source_y[:64]
pretraining.fit(source_x, source_y, epochs=1 if smoke else 8, batch_size=16, verbose=0)

# Your fine-tuning script: few labelled target images, test split used once.
x, y = load_builtin("digits-rotated", "train", image_size=32)
x, _, y, _ = train_test_split(x, y, train_size=50 if smoke else 200, stratify=y, random_state=0)
x_test, y_test = load_builtin("digits-rotated", "test", image_size=32)
if smoke:
    x_test, y_test = x_test[:32], y_test[:32]

freezing.freeze(backbone)  # BatchNormalization stays in inference mode.
inputs = keras.Input((32, 32, 3))
outputs = keras.layers.Dense(10)(backbone(inputs, training=False))
model = keras.Model(inputs, outputs)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
# Early stopping watches 10% of the labelled images, never the test split.
model.fit(
    x, y, validation_split=0.1, epochs=5 if smoke else 20, batch_size=16, verbose=2,
    callbacks=[
        # Epoch 5 (0-based 4): unfreeze the two top conv blocks, in this same fit.
        StagedUnfreezing({4: ["conv1", "conv2"]}, target=backbone, verbose=1),
        keras.callbacks.EarlyStopping(patience=8, restore_best_weights=True, verbose=1),
    ],
)
scores = model.evaluate(x_test, y_test, return_dict=True, verbose=0)  # once, at the end
print(f"reached: test accuracy {scores['accuracy']:.3f} (expected {EXPECTED})")
