"""Fine-tune ResNet50 (ImageNet weights) on Stanford Dogs: new head, frozen base, then staged unfreezing.

Full mode (downloads ImageNet weights and ~750 MB of tfds data):

    KERAS_BACKEND=jax python examples/stanford_dogs_resnet50.py

Expected result: test accuracy about 0.80 and macro-F1 about 0.80 on the
8,580 test images (120 breeds); ResNet50 fine-tuned on Stanford Dogs
reaches ~81 % top-1 in the Transfer-Learning-Library benchmarks and
keras-io's EfficientNetB0 example ~77 %. Roughly 30-40 min on one GPU; not
measured here (this environment cannot download the weights or data).

Smoke mode (offline, seconds: a two-stage ResNet with random weights, 32 px,
mock tfds data):

    python examples/stanford_dogs_resnet50.py --smoke

The recipe: a new softmax head trains on the frozen base (BatchNorm in
inference mode); at `UNFREEZE_EPOCH` `StagedUnfreezing` unfreezes the last
ResNet stage (`conv5_*`) inside the same `fit`, at a 10x lower learning
rate through `LayerwiseOptimizer`; early stopping watches a stratified 10 %
of the training split, and the test split is scored once, at the end.
"""

import argparse

import keras
import numpy as np
from sklearn.model_selection import train_test_split

from keras_transfer import backbones
from keras_transfer import datasets
from keras_transfer import heads
from keras_transfer import models
from keras_transfer.callbacks import StagedUnfreezing
from keras_transfer.optimizers import LayerwiseOptimizer

EXPECTED = 'test accuracy about 0.80, macro-F1 about 0.80 (TLlib ResNet50: ~81 %)'

DATA = "tfds:stanford_dogs"
FULL = dict(backbone="resnet50", unfreeze="conv5_*", weights="imagenet",
            input_shape=(224, 224, 3), image_size=224, batch_size=32, epochs=20, unfreeze_epoch=5)
# Smoke: a two-stage random-weight ResNet saved as a local KerasHub preset.
# (KerasHub presets fix their input shape: input_shape=None.)
SMOKE = dict(backbone=None, unfreeze="stack1_*", weights=None,
             input_shape=None, image_size=32, batch_size=8, epochs=2, unfreeze_epoch=1)


def main(backbone, unfreeze, weights, input_shape, image_size, batch_size, epochs, unfreeze_epoch):
    # Validation: a stratified 10 % of "train"; "test" is evaluated once.
    labels = datasets.labels(DATA, "train")
    fit_rows, val_rows = train_test_split(
        np.arange(len(labels)), test_size=0.1, stratify=labels, random_state=0
    )
    load = dict(image_size=image_size, batch_size=batch_size)
    train, info = datasets.load(DATA, "train", indices=fit_rows, with_info=True, **load)
    val = datasets.load(DATA, "train", indices=val_rows, augment=False, shuffle=False, **load)
    test = datasets.load(DATA, "test", **load)

    # Frozen ResNet50 (preprocessing inside) + a new head on its pooled features.
    base = backbones.load_backbone(backbone, weights=weights, input_shape=input_shape, pooling="avg")
    head = heads.ClassificationHead(info.num_classes, pooling=None, dropout=0.2)
    model = models.build_classifier(base, info.num_classes, head=head, compile=False)
    model.compile(**models.compile_args(LayerwiseOptimizer(keras.optimizers.Adam(1e-3)), head))

    model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        callbacks=[
            # The last stage trains from `unfreeze_epoch` on, at 0.1 x the head's rate.
            StagedUnfreezing({unfreeze_epoch: (unfreeze, 0.1)}, target=base.feature_model, verbose=1),
            keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
        ],
    )
    scores = model.evaluate(test, return_dict=True, verbose=0)
    print(f"test accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}")
    print(f"expected (full mode): {EXPECTED}; --smoke trains on random stand-ins, "
          "so its numbers mean nothing")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")
    if parser.parse_args().smoke:
        import tempfile

        from _smoke import mock_tfds
        from _smoke import tiny_resnet_preset

        with tempfile.TemporaryDirectory() as folder, mock_tfds(num_examples=32, num_classes=4):
            main(**{**SMOKE, "backbone": tiny_resnet_preset(folder)})
    else:
        main(**FULL)
