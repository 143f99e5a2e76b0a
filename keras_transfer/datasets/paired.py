"""Balanced source/target batches for domain adaptation with plain `fit`.

`paired_dataset` mixes labelled source rows and unlabelled target rows into
batches whose sample weights hide the target labels from the label loss,
while a domain loss sees every row (see `keras_transfer.adaptation`).
"""

import math
import sys

import keras
import numpy as np

from keras_transfer.datasets._labels import assert_labels_in_pipeline
from keras_transfer.datasets._labels import check_label_array


def _check_arrays(source, target, num_classes):
    if not isinstance(source, (tuple, list)) or len(source) != 2:
        raise ValueError(
            "Invalid value received for argument `source`. Expected a tuple "
            f"`(x, y)`. Received: source of type {type(source).__name__}"
        )
    x_source, y_source = np.asarray(source[0]), np.asarray(source[1])
    x_target = np.asarray(target)
    for label, array in (("source", x_source), ("target", x_target)):
        if len(array) == 0:
            raise ValueError(
                f"Invalid value received for argument `{label}`. Expected at "
                f"least one row. Received: {label} with shape {array.shape}"
            )
    if x_source.shape[1:] != x_target.shape[1:] or x_source.dtype != x_target.dtype:
        raise ValueError(
            "Invalid value received for argument `target`. Source and target "
            "rows must have the same shape and dtype. Received: source "
            f"{x_source.shape[1:]} {x_source.dtype}, target "
            f"{x_target.shape[1:]} {x_target.dtype}"
        )
    if len(y_source) != len(x_source):
        raise ValueError(
            "Invalid value received for argument `source`. `x` and `y` must "
            f"have the same length. Received: len(x)={len(x_source)}, "
            f"len(y)={len(y_source)}"
        )
    if not np.issubdtype(y_source.dtype, np.integer):
        raise ValueError(
            "Invalid value received for argument `source`. Labels must be "
            f"integer class indices. Received: y dtype={y_source.dtype}"
        )
    check_label_array(y_source, num_classes, "source")
    return x_source, y_source, x_target


def _check_datasets(source, target, steps_per_epoch):
    import tensorflow as tf

    source_spec, target_spec = source.element_spec, target.element_spec
    if not isinstance(source_spec, tuple) or len(source_spec) != 2:
        raise ValueError(
            "Invalid value received for argument `source`. A tf.data source "
            "must yield unbatched `(x, y)` pairs. Received: element_spec="
            f"{source_spec}"
        )
    x_spec = source_spec[0]
    if isinstance(target_spec, tuple):
        target = target.map(lambda *row: row[0])
        target_spec = target_spec[0]
    if (
        not x_spec.shape.is_compatible_with(target_spec.shape)
        or x_spec.dtype != target_spec.dtype
    ):
        raise ValueError(
            "Invalid value received for argument `target`. Source and target "
            "rows must have the same shape and dtype. Received: source "
            f"{x_spec}, target {target_spec}"
        )
    if steps_per_epoch is None:
        sizes = [int(ds.cardinality()) for ds in (source, target)]
        if min(sizes) < 0:
            raise ValueError(
                "Invalid value received for argument `steps_per_epoch`. The "
                "datasets have an unknown or infinite length; pass "
                f"`steps_per_epoch`. Received: steps_per_epoch={steps_per_epoch}"
            )
        if min(sizes) == 0:
            raise ValueError(
                "Invalid value received for argument `target`. Expected at "
                f"least one row. Received: source/target sizes {sizes}"
            )
    else:
        sizes = None
    return source, target, sizes


def paired_dataset(
    source,
    target,
    batch_size=64,
    num_classes=None,
    shuffle=True,
    seed=None,
    steps_per_epoch=None,
):
    """Balanced source/target batches for `AdaptationModel.fit`.

    Every batch holds `batch_size // 2` labelled source rows followed by
    `batch_size // 2` target rows. An epoch covers the longer domain once;
    the shorter one cycles (reshuffled on every pass). Each element is
    `(x, y, sample_weight)` with

    ```python
    y = {"label": class ids (0 for target rows), "domain": 0 source / 1 target}
    sample_weight = {"label": 2 for source rows, 0 for target rows,
                     "domain": 1 everywhere}
    ```

    so the label loss (mean over the batch) equals the mean over source rows
    and never sees target labels, while the domain loss sees all rows.

    Args:
        source: Tuple `(x, y)` of arrays with integer labels, or a
            `tf.data.Dataset` of unbatched `(x, y)` pairs.
        target: Array of unlabelled rows, or a `tf.data.Dataset` of
            unbatched rows (`(x, ...)` tuples keep `x`).
        batch_size: Even integer >= 2. Defaults to `64`.
        num_classes: Optional integer. When given, labels are checked to lie
            in `[0, num_classes)`: array labels at once, `tf.data` labels in
            the pipeline (iterating a batch with a bad label raises
            `tf.errors.InvalidArgumentError` naming it).
        shuffle: Boolean. Shuffle each domain every pass. Defaults to `True`.
        seed: Optional integer shuffle seed.
        steps_per_epoch: Optional integer. Batches per epoch; required for
            datasets of unknown length. Defaults to
            `ceil(max(n_source, n_target) / (batch_size // 2))`.

    Returns:
        For arrays, a `PairedArrays` (a `keras.utils.PyDataset`: numpy only,
        no TensorFlow needed, so it serves JAX and torch installs too); for
        `tf.data` inputs, a `tf.data.Dataset`. Both work with `fit` on every
        backend.
    """
    if not isinstance(batch_size, int) or batch_size < 2 or batch_size % 2:
        raise ValueError(
            "Invalid value received for argument `batch_size`. Expected an "
            f"even integer >= 2. Received: batch_size={batch_size}"
        )
    if steps_per_epoch is not None and (
        not isinstance(steps_per_epoch, int) or steps_per_epoch < 1
    ):
        raise ValueError(
            "Invalid value received for argument `steps_per_epoch`. Expected "
            f"an integer >= 1. Received: steps_per_epoch={steps_per_epoch}"
        )
    half = batch_size // 2
    if not (_is_tf_dataset(source) or _is_tf_dataset(target)):
        x_source, y_source, x_target = _check_arrays(source, target, num_classes)
        return PairedArrays(
            (x_source, y_source), x_target, half, shuffle, seed, steps_per_epoch
        )

    import tensorflow as tf

    if not (
        isinstance(source, tf.data.Dataset) and isinstance(target, tf.data.Dataset)
    ):
        raise ValueError(
            "Invalid value received for arguments `source` and `target`. "
            "Pass both as arrays or both as tf.data.Dataset. Received: "
            f"source={type(source).__name__}, target={type(target).__name__}"
        )
    source_ds, target_ds, sizes = _check_datasets(source, target, steps_per_epoch)
    label_spec = source_ds.element_spec[1]
    if not label_spec.dtype.is_integer:
        raise ValueError(
            "Invalid value received for argument `source`. Labels must be "
            f"integer class indices. Received: y dtype={label_spec.dtype.name}"
        )
    check_labels = num_classes is not None
    if steps_per_epoch is None:
        steps_per_epoch = math.ceil(max(sizes) / half)

    def batches(dataset, size):
        if shuffle and size:
            dataset = dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True)
        return dataset.repeat().batch(half, drop_remainder=True)

    def merge(source_batch, x_target_batch):
        x_source_batch, y_source_batch = source_batch
        if check_labels:
            # A bad label stops `fit` with its value instead of training on it.
            y_source_batch = assert_labels_in_pipeline(y_source_batch, num_classes, "source")
        source_rows = tf.ones((half,), "float32")
        target_rows = tf.zeros((half,), "float32")
        x = tf.concat([x_source_batch, x_target_batch], axis=0)
        y = {
            "label": tf.concat([y_source_batch, tf.zeros_like(y_source_batch)], 0),
            "domain": tf.concat([target_rows, source_rows], 0),
        }
        weights = {
            "label": tf.concat([2.0 * source_rows, target_rows], 0),
            "domain": tf.ones((2 * half,), "float32"),
        }
        return x, y, weights

    source_size, target_size = sizes if sizes else (None, None)
    paired = tf.data.Dataset.zip(
        (batches(source_ds, source_size), batches(target_ds, target_size))
    )
    return paired.take(steps_per_epoch).map(merge).prefetch(tf.data.AUTOTUNE)


def _is_tf_dataset(value):
    """True for a `tf.data.Dataset`, without importing TensorFlow."""
    tf = sys.modules.get("tensorflow")  # Not imported: cannot be a Dataset.
    return tf is not None and isinstance(value, tf.data.Dataset)


class PairedArrays(keras.utils.PyDataset):
    """Balanced source/target batches from arrays; see `paired_dataset`.

    Numpy only. Each domain is read as an endless stream of shuffled passes
    (pass `k` uses its own permutation drawn from `seed` and `k`), and batch
    `i` of epoch `e` takes the next `half` rows of each stream. A batch is a
    pure function of `(seed, e, i)`: the order does not depend on which
    worker asks for it, and the shorter domain cycles without repeats inside
    a pass.
    """

    def __init__(self, source, x_target, half, shuffle=True, seed=None, steps_per_epoch=None):
        super().__init__()
        self.x_source, self.y_source = source
        self.x_target = x_target
        self.half = half
        self.shuffle = shuffle
        self.seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else seed
        self.steps_per_epoch = steps_per_epoch or math.ceil(
            max(len(self.x_source), len(self.x_target)) / half
        )
        self.epoch = 0
        # The same in every batch: source rows first, then target rows.
        zeros, ones = np.zeros(half, "float32"), np.ones(half, "float32")
        self._domain = np.concatenate([zeros, ones])
        self._weights = {"label": np.concatenate([2.0 * ones, zeros]), "domain": np.ones(2 * half, "float32")}
        self._orders = {}  # (domain, pass) -> permutation, for the passes in use

    def __len__(self):
        return self.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def _rows(self, domain, size, step):
        """Indices of rows `step * half ... + half` of a domain's stream."""
        positions = np.arange(step * self.half, (step + 1) * self.half)
        passes, offsets = np.divmod(positions, size)
        rows = np.empty_like(positions)
        for k in np.unique(passes):
            rows[passes == k] = self._order(domain, int(k), size)[offsets[passes == k]]
        return rows

    def _order(self, domain, k, size):
        """Row order of pass `k` of a domain, drawn once and kept while in use."""
        key = (domain, k)
        if key not in self._orders:
            for old in [old for old in self._orders if old[0] == domain and old[1] < k - 1]:
                del self._orders[old]
            self._orders[key] = (
                np.random.default_rng([self.seed, domain, k]).permutation(size)
                if self.shuffle
                else np.arange(size)
            )
        return self._orders[key]

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"Batch index out of range: {index}")
        step = self.epoch * self.steps_per_epoch + index
        source = self._rows(0, len(self.x_source), step)
        target = self._rows(1, len(self.x_target), step)
        x = np.concatenate([self.x_source[source], self.x_target[target]], axis=0)
        y_source = self.y_source[source]
        y = {
            "label": np.concatenate([y_source, np.zeros_like(y_source)]),
            "domain": self._domain,
        }
        return x, y, self._weights
