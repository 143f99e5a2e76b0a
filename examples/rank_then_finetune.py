"""Pick a backbone with LogME before training, then fine-tune the winner.

Needs `keras_transfer/ranking.py` (the feature-cache branch).

Full mode (downloads four ImageNet backbones and tf_flowers, ~350 MB):

    KERAS_BACKEND=jax python examples/rank_then_finetune.py

Expected result: a table of the four candidates by LogME (You et al.,
2021, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", whose scores track fine-tuned accuracy across ImageNet models),
computed from one pass of each backbone over 1,000 training images, then
the winner fine-tuned to a test accuracy of about 0.9 on a held-out 15 % of
tf_flowers (an estimate from keras-io's flowers fine-tuning examples, not
measured here: this environment cannot download the weights or data).
Ranking costs one forward pass per candidate instead of one fine-tuning
run each.

Smoke mode (offline, seconds: two tiny random-weight ResNet presets, 32 px,
mock tfds data):

    python examples/rank_then_finetune.py --smoke
"""

import argparse
import os
import tempfile

import keras
import numpy as np
from sklearn.model_selection import train_test_split

from keras_transfer import backbones
from keras_transfer import datasets
from keras_transfer import heads
from keras_transfer import models
from keras_transfer.callbacks import StagedUnfreezing
from keras_transfer.optimizers import LayerwiseOptimizer
from keras_transfer.ranking import rank

EXPECTED = "a LogME table of the candidates, then the winner at about 0.9 test accuracy (tf_flowers)"

DATA = "tfds:tf_flowers"
FULL = dict(
    candidates={name: name for name in ("resnet50", "efficientnetb0", "mobilenetv3large", "densenet121")},
    weights="imagenet", input_shape=(224, 224, 3), image_size=224,
    rank_examples=1000, epochs=10, unfreeze_epoch=3,
)
# KerasHub presets fix their input shape: input_shape=None.
SMOKE = dict(candidates=None, weights=None, input_shape=None, image_size=32,
             rank_examples=40, epochs=2, unfreeze_epoch=1)


def main(candidates, weights, input_shape, image_size, rank_examples, epochs, unfreeze_epoch):
    # Validation: a stratified 10 % of the training part; the test part is scored once.
    labels = datasets.labels(DATA, "train[:85%]")
    fit_rows, val_rows = train_test_split(
        np.arange(len(labels)), test_size=0.1, stratify=labels, random_state=0
    )
    load = dict(image_size=image_size)
    # Ranking: a labelled sample of the training rows, one pass per candidate.
    sample = datasets.load(DATA, "train[:85%]", indices=fit_rows[:rank_examples],
                           augment=False, shuffle=False, **load)
    loaded = {
        name: backbones.load_backbone(handle, weights=weights, input_shape=input_shape, pooling="avg")
        for name, handle in candidates.items()
    }
    ranking = rank(loaded, sample)  # LogME, best first
    print(ranking)
    winner = loaded[ranking.best]

    train, info = datasets.load(DATA, "train[:85%]", indices=fit_rows, with_info=True, **load)
    val = datasets.load(DATA, "train[:85%]", indices=val_rows, augment=False, shuffle=False, **load)
    test = datasets.load(DATA, "train[85%:]", augment=False, shuffle=False, **load)
    head = heads.ClassificationHead(info.num_classes, pooling=None, dropout=0.2)
    model = models.build_classifier(winner, info.num_classes, head=head, compile=False)
    model.compile(**models.compile_args(LayerwiseOptimizer(keras.optimizers.Adam(1e-3)), head))
    model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        callbacks=[
            # The top quarter of the winner's layers trains from `unfreeze_epoch`, at 0.1x.
            StagedUnfreezing({unfreeze_epoch: (0.25, 0.1)}, target=winner.feature_model),
            keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
        ],
    )
    scores = model.evaluate(test, return_dict=True, verbose=0)
    print(f"{ranking.best}: test accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}")
    print(f"expected (full mode): {EXPECTED}; --smoke trains on random stand-ins, "
          "so its numbers mean nothing")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")
    if parser.parse_args().smoke:
        from _smoke import mock_tfds
        from _smoke import tiny_resnet_preset

        with tempfile.TemporaryDirectory() as folder, mock_tfds(num_examples=60, num_classes=5):
            presets = {name: tiny_resnet_preset(os.path.join(folder, name)) for name in ("a", "b")}
            main(**{**SMOKE, "candidates": presets})
    else:
        main(**FULL)
