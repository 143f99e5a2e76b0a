"""Build a zoo task, train it with its recipe and export a verified model.

    KERAS_BACKEND=jax python examples/zoo_fit_export.py

Expected result: see below (test accuracy about 0.3-0.45 after 10 epochs),
then `exported tf_saved_model ... max |diff|` below 1e-4.

Smoke mode (offline, seconds: 1 epoch):

    python examples/zoo_fit_export.py --smoke

Uses the offline "digits" data and the tiny test task so it runs in a minute
on a laptop CPU; swap in e.g. "image_classification/efficientnetb0" and
"tfds:tf_flowers" (pretrained weights and data download) for real work.

Expected: test accuracy about 0.3-0.45 (measured 0.385, macro-F1 0.363, in one
run on jax, 10 epochs, unseeded): `test/tiny_cnn` is a randomly initialised smoke-test
CNN with a constant learning rate; this shows the workflow, not a good model.
"""

import argparse

import numpy as np
from sklearn.model_selection import train_test_split

import keras_transfer
from keras_transfer import datasets
from keras_transfer import zoo

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")

TASK = "test/tiny_cnn"
EXPECTED = "about 0.3-0.45"  # measured, see the header
EPOCHS = 1 if parser.parse_args().smoke else 10

# Validation: a stratified 10% of the training split; the test split is
# evaluated once, at the end.
labels = datasets.labels("digits", "train")
fit_rows, val_rows = train_test_split(
    np.arange(len(labels)), test_size=0.1, stratify=labels, random_state=0
)
train, info = datasets.load("digits", "train", image_size=32, indices=fit_rows, with_info=True)
val = datasets.load("digits", "train", image_size=32, indices=val_rows, augment=False, shuffle=False)
test = datasets.load("digits", "test", image_size=32)

model = zoo.build(TASK, num_classes=info.num_classes, weights=None,
                  input_shape=info.image_shape)
model.fit(train, validation_data=val, epochs=EPOCHS,
          callbacks=zoo.recipe(TASK, epochs=EPOCHS))
scores = model.evaluate(test, return_dict=True, verbose=0)  # loss, accuracy, macro_f1
print(f"reached: test accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f} "
      f"(expected {EXPECTED})")

path = keras_transfer.exporting.artifact_path("runs/example_export")
result = keras_transfer.export(model, path, overwrite=True)
print(f"exported {result.format} to {result.path}, max |diff| {result.max_abs_diff:.2e}")
