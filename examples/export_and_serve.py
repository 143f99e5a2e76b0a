"""Export a fine-tuned model as a verified SavedModel and serve it with TensorFlow on raw uint8 images.

Full mode (downloads ImageNet weights and tf_flowers, ~220 MB):

    KERAS_BACKEND=jax python examples/export_and_serve.py

Expected result: after 5 epochs, test accuracy about 0.90 on a held-out 15 %
of tf_flowers (5 classes; keras-io's EfficientNet fine-tuning examples reach
0.85-0.92 on flowers), then `exported tf_saved_model ... max |diff| < 1e-4`
and the served predictions equal the Keras model's. A few minutes on one
GPU; not measured here (this environment cannot download the weights or
data).

Smoke mode (offline, seconds: the zoo's tiny CNN on the built-in digits):

    python examples/export_and_serve.py --smoke

The serving side needs only TensorFlow: `tf.saved_model.load` and the
`"serve_uint8"` signature, which takes uint8 pixels as an image decoder
gives them (the model's preprocessing is inside the SavedModel). On torch,
`keras_transfer.export` writes the SavedModel through a TensorFlow
subprocess and checks it against the torch model.
"""

import argparse

import numpy as np
from sklearn.model_selection import train_test_split

import keras_transfer
from keras_transfer import datasets
from keras_transfer import zoo

EXPECTED = 'test accuracy about 0.90 after 5 epochs, then max |diff| < 1e-4 and served == Keras predictions'

FULL = dict(task="image_classification/efficientnetb0", weights="imagenet", data="tfds:tf_flowers",
            train_split="train[:85%]", test_split="train[85%:]", image_size=224, epochs=5)
SMOKE = dict(task="test/tiny_cnn", weights=None, data="digits",
             train_split="train", test_split="test", image_size=32, epochs=1)


def serve(saved_model_path, pixels):
    """Class probabilities from the SavedModel alone (TensorFlow, no Keras)."""
    import tensorflow as tf

    signature = tf.saved_model.load(saved_model_path).signatures["serve_uint8"]
    (input_name,) = signature.structured_input_signature[1]  # the model's input name
    (logits,) = signature(**{input_name: tf.constant(pixels, tf.uint8)}).values()
    return tf.nn.softmax(logits).numpy()


def main(task, weights, data, train_split, test_split, image_size, epochs):
    # Validation: a stratified 10 % of the training split; the test split is scored once.
    labels = datasets.labels(data, train_split)
    fit_rows, val_rows = train_test_split(
        np.arange(len(labels)), test_size=0.1, stratify=labels, random_state=0
    )
    load = dict(image_size=image_size)
    train, info = datasets.load(data, train_split, indices=fit_rows, with_info=True, **load)
    val = datasets.load(data, train_split, indices=val_rows, augment=False, shuffle=False, **load)
    test = datasets.load(data, test_split, augment=False, shuffle=False, **load)

    model = zoo.build(task, num_classes=info.num_classes, weights=weights,
                      input_shape=info.image_shape)
    model.fit(train, validation_data=val, epochs=epochs, callbacks=zoo.recipe(task, epochs=epochs))
    print(model.evaluate(test, return_dict=True, verbose=0))
    print(f"expected (full mode): {EXPECTED}; --smoke trains on random stand-ins, "
          "so its numbers mean nothing")

    # Writes next to the destination, reloads with TensorFlow, compares, then moves into place.
    path = keras_transfer.exporting.artifact_path("runs/export_and_serve")
    result = keras_transfer.export(model, path, overwrite=True)
    print(f"exported {result.format} to {result.path}, max |diff| {result.max_abs_diff:.2e}")

    images, _ = next(iter(test))
    pixels = np.asarray(images).round().astype("uint8")  # what a JPEG/PNG decoder yields
    served = serve(result.path, pixels)
    kept = model.predict(pixels.astype("float32"), verbose=0).argmax(-1)
    print(f"served {len(pixels)} uint8 images, classes {served.argmax(-1)[:8]}; "
          f"same as the Keras model: {bool((served.argmax(-1) == kept).all())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")
    main(**(SMOKE if parser.parse_args().smoke else FULL))
