"""Training passes drawn from `(seed, epoch)`, so a resumed `fit` sees the same data.

`tf.data`'s `shuffle(reshuffle_each_iteration=True)` and Keras' random
augmentation layers draw from state that advances with every pass, so after
`keras.callbacks.BackupAndRestore` restores epoch 5 in a new process, the
data of "epoch 5" is really that of epoch 0. `keras_transfer.datasets.load`
instead draws the shuffle order and the default augmentation of each pass
from `seed` and the pass number (stateless random ops), and `EpochSync`
sets the pass number to the epoch `fit` is in.
"""

import math
import weakref

import keras

from keras_transfer.datasets.paired import PairedArrays

# Default augmentation: rotation up to 0.05 turns (18 degrees) and shifts of
# up to 10% of the side each way, as keras.layers.RandomRotation(0.05) and
# RandomTranslation(0.1, 0.1) (bilinear, reflected borders).
_ROTATION = 0.05
_SHIFT = 0.1
# Pass counter of each dataset `keyed_passes` made (a `tf.Variable`).
_PASS_COUNTERS = weakref.WeakKeyDictionary()


def keyed_passes(source, prepare, batch_size, shuffle, augment, flip, seed, num_examples):
    """Batches of `source`, each pass shuffled and augmented from `(seed, pass)`.

    Args:
        source: `(table, decode)`: a tuple of tensors with one row per
            example and a function of one row's tensors returning
            `(image, label)`, read in a random order drawn per pass; or a
            `tf.data.Dataset` of `(image, label)` (a stream, e.g. tfds), then
            shuffled by tf.data's buffer, whose order depends on how often
            it was read (only its augmentation is drawn from the pass).
        prepare: Function of `(image, label)` applied to each example.
        batch_size: Integer.
        shuffle: Boolean, or for a stream the shuffle buffer size.
        augment: `None`, `True` (the default augmentation) or a callable on
            image batches (its own randomness is its own).
        flip: Whether the default augmentation mirrors images.
        seed: Integer.
        num_examples: Integer or `None` (unknown).

    Returns:
        `(batched dataset, pass counter)`: the counter is an int64
        `tf.Variable` holding the number of the next pass; each pass adds 1.
    """
    import tensorflow as tf

    counter = tf.Variable(0, dtype="int64", trainable=False, name="pass")
    base_key = tf.constant([seed, 0], "int64")
    if isinstance(source, tf.data.Dataset):
        stream = source.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        if shuffle:
            stream = stream.shuffle(shuffle, seed=seed)
    else:
        table, decode = source
        count = tf.shape(table[0], out_type="int64")[0]

    def one_pass(_):
        number = counter.assign_add(1) - 1
        key = tf.random.experimental.stateless_fold_in(base_key, number)
        if isinstance(source, tf.data.Dataset):
            data = stream
        else:
            order = tf.range(count)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(order, key)
            data = tf.data.Dataset.from_tensor_slices(order).map(
                lambda row: prepare(*decode(*[tf.gather(t, row) for t in table])),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        data = data.batch(batch_size)
        if augment is True:
            data = data.enumerate().map(
                lambda index, batch: (
                    _augment(batch[0], tf.random.experimental.stateless_fold_in(key, index), flip),
                    batch[1],
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        elif augment is not None:
            data = data.map(lambda x, y: (augment(x), y))
        return data

    batches = tf.data.Dataset.from_tensors(0).flat_map(one_pass)
    if num_examples is None and isinstance(source, tf.data.Dataset):
        # A stream that knows its length (e.g. a tfds split without stored
        # split metadata) still gives `fit` its steps per epoch.
        known = int(source.cardinality())
        num_examples = known if known >= 0 else None
    if num_examples is not None:
        batches = batches.apply(
            tf.data.experimental.assert_cardinality(math.ceil(num_examples / batch_size))
        )
    return batches, counter


def _augment(images, key, flip):
    """Random flip, rotation and shift of an image batch, drawn from `key`."""
    import tensorflow as tf

    shape = tf.shape(images)
    count = shape[0]
    height, width = tf.cast(shape[1], "float32"), tf.cast(shape[2], "float32")
    keys = tf.random.experimental.stateless_split(key, 4)
    if flip:
        mirrored = tf.random.stateless_uniform([count], keys[0]) < 0.5
        images = tf.where(mirrored[:, None, None, None], tf.reverse(images, axis=[2]), images)
    angle = tf.random.stateless_uniform([count], keys[1], -_ROTATION, _ROTATION) * 2 * math.pi
    dx = tf.random.stateless_uniform([count], keys[2], -_SHIFT, _SHIFT) * width
    dy = tf.random.stateless_uniform([count], keys[3], -_SHIFT, _SHIFT) * height
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # Output pixel (x, y) samples the input at R(angle) (x - c - d) + c.
    zeros = tf.zeros_like(angle)
    transforms = tf.stack(
        [
            cos, -sin, cx - cos * (cx + dx) + sin * (cy + dy),
            sin, cos, cy - sin * (cx + dx) - cos * (cy + dy),
            zeros, zeros,
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def register_counter(dataset, counter):
    _PASS_COUNTERS[dataset] = counter
    return dataset


class EpochSync(keras.callbacks.Callback):
    """Makes each epoch of `fit` read the pass of the data drawn for that epoch.

    A training dataset from `keras_transfer.datasets.load` shuffles and
    augments each pass from `seed` and the pass number, which counts from 0.
    When `keras.callbacks.BackupAndRestore` resumes a run at epoch 5 in a new
    process, this callback sets the pass number to 5, so the resumed run sees
    exactly the data the uninterrupted run saw and ends with the same
    weights. (A custom `augment=` layer draws from its own random state.)
    It does the same for the `PairedArrays` of
    `keras_transfer.datasets.paired_dataset`, whose batches are drawn from
    `(seed, epoch, index)`.

    Args:
        dataset: A dataset returned by `keras_transfer.datasets.load` with
            shuffling or augmentation on, or a `PairedArrays`.

    Example:

    ```python
    train = keras_transfer.datasets.load(
        "digits", "train", image_size=16, indices=np.arange(64)
    )
    model = keras_transfer.zoo.build("test/tiny_cnn", 10, input_shape=(16, 16, 3))
    model.fit(train, epochs=2, verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore("run/backup"),
        keras_transfer.datasets.EpochSync(train),
    ])
    ```
    """

    def __init__(self, dataset):
        super().__init__()
        if not isinstance(dataset, PairedArrays) and dataset not in _PASS_COUNTERS:
            raise ValueError(
                "Invalid value received for argument `dataset`. Expected a "
                "dataset returned by `keras_transfer.datasets.load` with "
                "shuffling or augmentation on (the training split by "
                "default), or a `PairedArrays`; a dataset without them is the "
                f"same every epoch. Received: dataset={dataset!r}"
            )
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        if isinstance(self.dataset, PairedArrays):
            self.dataset.epoch = epoch
        else:
            _PASS_COUNTERS[self.dataset].assign(epoch)
