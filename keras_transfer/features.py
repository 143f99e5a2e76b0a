"""Extract a frozen backbone's features once, cache them, train heads on them.

A frozen backbone computes the same features for an image on every epoch, so
feature-extraction training can run the backbone once and train the head on
the stored features with plain `fit`:

```python
features = keras_transfer.features.extract(backbone, (x, y), cache_dir="cache/")
head = keras.Sequential([keras.Input(features.feature_shape), keras.layers.Dense(5)])
head.compile(optimizer="adam", loss=..., metrics=["accuracy"])
head.fit(features.dataset(batch_size=64), epochs=20)
model = keras_transfer.features.attach(backbone, head)  # raw images -> logits
keras_transfer.export(model, "exported/")
```

The cache holds one view of every input: it cannot serve augmented data, and
`extract` refuses a backbone with random augmentation layers.
"""

import dataclasses
import hashlib
import json
import math
import os
import tempfile

import keras
import numpy as np

from keras_transfer._validation import check_int
from keras_transfer.backbones import Backbone

_MANIFEST = "manifest.json"
_FORMAT = 1
_PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_DEFAULT_SHARD_BYTES = 64 * 2**20


def extract(
    backbone,
    data,
    *,
    cache_dir=None,
    batch_size=64,
    shard_bytes=_DEFAULT_SHARD_BYTES,
    precision="float32",
):
    """Runs a frozen backbone once over `data` and keeps its features.

    Features are computed batch by batch with the backbone in inference mode
    (Keras' compiled predict function: XLA on JAX, a `tf.function` on
    TensorFlow), and stored in shards of at most about `shard_bytes`: in
    memory, or as `.npy` files under `cache_dir`, each written to a
    temporary file and renamed into place. Only the shard being filled is
    held in memory (about twice `shard_bytes` at most, while it is
    written), so a dataset larger than memory extracts.

    With `cache_dir`, the cache is keyed by the backbone's architecture, its
    weights, its preprocessing and the precision, and every batch by a digest
    of its input bytes. A later call reuses every batch whose inputs are
    unchanged and recomputes the others (change one image: its batch is
    recomputed); labels are always taken from `data`. A `cache_dir` written
    for another backbone, weights, preprocessing or precision is refused with
    an error naming what differs. Reuse matches batches by content, so feed
    the data in a fixed order (no shuffling) for it to hit.

    Args:
        backbone: A `keras.Model` from raw inputs to features, or a
            `keras_transfer.backbones.Backbone` (its preprocessing then runs
            first). It must be frozen (no trainable weights) and hold no
            random augmentation layer.
        data: Inputs `x` (an array), `(x, y)` arrays with integer labels, or
            an iterable of batches `x` or `(x, y)` such as a batched
            `tf.data.Dataset` or a `keras.utils.PyDataset`, in a fixed order.
        cache_dir: String, path or `None`. Folder of the on-disk cache;
            `None` keeps the features in memory. Defaults to `None`.
        batch_size: Integer >= 1. Batch size for arrays (an iterable keeps
            its own batches). Defaults to `64`.
        shard_bytes: Integer >= 1. Close a shard once its features reach
            this size. Defaults to 64 MiB.
        precision: `"float32"`, `"bfloat16"` or `"float16"` (mixed precision:
            variables stay float32, features are stored as float32), or
            `"auto"`: `"bfloat16"` when Keras sees a GPU or TPU, else
            `"float32"`. Defaults to `"float32"`.

    Returns:
        A `keras_transfer.features.CachedFeatures`.

    Example:

    ```python
    backbone = keras_transfer.models.cnn_features((16, 16, 3))  # pretrained in real use
    keras_transfer.freeze(backbone)
    x_train, y_train = keras_transfer.datasets.load_builtin("digits", "train", 16)
    data = (x_train[:64], y_train[:64])

    features = keras_transfer.features.extract(
        backbone, data, cache_dir="cache/train", batch_size=32)
    features.reused_batches, features.computed_batches  # (0, 2)
    features = keras_transfer.features.extract(  # again: read back from disk
        backbone, data, cache_dir="cache/train", batch_size=32)
    features.reused_batches, features.computed_batches  # (2, 0)
    features.arrays()[0].shape  # (64, 16)
    ```
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    shard_bytes = check_int("shard_bytes", shard_bytes, minimum=1)
    precision = _resolve_precision(precision)
    model = feature_model(backbone)
    key, descriptions = _cache_key(model, precision)
    store = _DiskStore(cache_dir, key, descriptions) if cache_dir is not None else _MemoryStore()
    extractor = _Extractor(_with_precision(model, precision))
    writer = _ShardWriter(store, shard_bytes)
    for x, y in _batches(data, batch_size):
        digest = _digest(x)
        features = store.reusable(digest)
        if features is None:
            features = extractor(x)
            writer.computed += 1
        else:
            writer.reused += 1
        writer.add(digest, features, y)
    return writer.finish()


@dataclasses.dataclass(frozen=True)
class _Shard:
    rows: int
    features: object  # An array (in memory) or the path of a `.npy` file.
    labels: object  # An array, a path, or None.

    def load(self, mmap=False):
        """`(features, labels)`; with `mmap`, disk shards are memory-mapped."""
        features, labels = self.features, self.labels
        if isinstance(features, str):
            mode = "r" if mmap else None
            features = np.load(features, mmap_mode=mode)
            labels = None if labels is None else np.load(labels, mmap_mode=mode)
        return features, labels


class CachedFeatures:
    """Features of a dataset, as `keras_transfer.features.extract` stored them.

    Attributes:
        feature_shape: Tuple, the shape of one example's features.
        num_examples: Integer, the number of examples.
        has_labels: Boolean, whether labels were stored.
        computed_batches: Integer, batches the backbone ran on in this call.
        reused_batches: Integer, batches read back from the cache.
        cache_dir: String or `None`.
    """

    def __init__(self, shards, feature_shape, computed_batches, reused_batches, cache_dir):
        self.shards = tuple(shards)
        self.feature_shape = tuple(feature_shape)
        self.num_examples = sum(shard.rows for shard in self.shards)
        self.has_labels = bool(self.shards) and self.shards[0].labels is not None
        self.computed_batches = computed_batches
        self.reused_batches = reused_batches
        self.cache_dir = cache_dir

    def __len__(self):
        return self.num_examples

    def __repr__(self):
        return (
            f"CachedFeatures(num_examples={self.num_examples}, "
            f"feature_shape={self.feature_shape}, shards={len(self.shards)}, "
            f"computed_batches={self.computed_batches}, "
            f"reused_batches={self.reused_batches}, cache_dir={self.cache_dir!r})"
        )

    def arrays(self):
        """All features (and labels) as numpy arrays in memory.

        Returns:
            `(features, labels)`, labels `None` when none were stored.
        """
        loaded = [shard.load() for shard in self.shards]
        features = np.concatenate([f for f, _ in loaded]) if loaded else np.zeros((0, *self.feature_shape), "float32")
        if not self.has_labels:
            return features, None
        return features, np.concatenate([labels for _, labels in loaded])

    def dataset(self, batch_size=32, shuffle=True, seed=0):
        """A `keras.utils.PyDataset` of `(features, labels)` batches for `fit`.

        Each batch reads only its rows (disk shards are memory-mapped), so
        memory stays bounded by a batch. With `shuffle`, each epoch visits
        the shards in a random order and the rows of each shard in a random
        order (a shuffle buffer of one shard, as `tf.data`'s `shuffle` has a
        buffer); `fit` may also shuffle the order of the batches.

        Args:
            batch_size: Integer >= 1. Defaults to `32`.
            shuffle: Boolean. Defaults to `True`.
            seed: Integer. Batches are a function of `(seed, epoch, index)`.
                Defaults to `0`.

        Returns:
            A `keras_transfer.features.FeatureBatches`.
        """
        if not self.has_labels:
            raise ValueError(
                "Invalid value received for argument `data` of `extract`: these "
                "features were extracted without labels, so they cannot train a "
                "head. Pass `(x, y)` or batches of `(x, y)` to `extract`."
            )
        return FeatureBatches(self.shards, check_int("batch_size", batch_size, minimum=1), shuffle, seed)


class FeatureBatches(keras.utils.PyDataset):
    """`(features, labels)` batches over cached shards; see `CachedFeatures.dataset`.

    A batch is a pure function of `(seed, epoch, index)` and reads only its
    own rows (disk shards are memory-mapped), so any batch order is cheap:
    Keras' `fit` also shuffles the order of batches when `shuffle=True`.
    """

    def __init__(self, shards, batch_size, shuffle=True, seed=0):
        super().__init__()
        self.shards = shards
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.batches_per_shard = [math.ceil(shard.rows / batch_size) for shard in shards]
        self.plan = self._plan()
        self.row_orders = {}  # shard -> row permutation, for this epoch

    def __len__(self):
        return sum(self.batches_per_shard)

    def on_epoch_end(self):
        self.epoch += 1
        self.plan = self._plan()
        self.row_orders = {}

    def _plan(self):
        """`(shard, batch within shard)` of every index, for this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.shards)) if self.shuffle else range(len(self.shards))
        return [(int(s), b) for s in order for b in range(self.batches_per_shard[s])]

    def _rows(self, shard, batch):
        rows = np.arange(batch * self.batch_size, min((batch + 1) * self.batch_size, self.shards[shard].rows))
        if not self.shuffle:
            return rows
        if shard not in self.row_orders:
            rng = np.random.default_rng([self.seed, self.epoch, shard])
            self.row_orders[shard] = rng.permutation(self.shards[shard].rows)
        return np.sort(self.row_orders[shard][rows])

    def __getitem__(self, index):
        if not 0 <= index < len(self.plan):
            raise IndexError(f"Batch index out of range: {index}")
        shard, batch = self.plan[index]
        features, labels = self.shards[shard].load(mmap=True)
        rows = self._rows(shard, batch)
        return np.asarray(features[rows]), np.asarray(labels[rows])


def feature_model(backbone):
    """The one model that maps raw inputs to features, checked for caching.

    Args:
        backbone: A `keras.Model` or a `keras_transfer.backbones.Backbone`.

    Returns:
        A `keras.Model`: the model itself, or for a `Backbone` its
        preprocessing followed by its feature model (inference mode).
    """
    if isinstance(backbone, Backbone):
        shape = backbone.info.input_shape or (None, None, 3)
        inputs = keras.Input(shape, name="images")
        outputs = backbone.feature_model(backbone.preprocessing(inputs), training=False)
        model = keras.Model(inputs, outputs, name=f"{backbone.feature_model.name}_with_preprocessing")
    elif isinstance(backbone, keras.Model):
        model = backbone
    else:
        raise ValueError(
            "Invalid value received for argument `backbone`. Expected a "
            "keras.Model from raw inputs to features or a "
            "keras_transfer.backbones.Backbone. "
            f"Received: backbone of type {type(backbone).__name__}"
        )
    random_layers = [layer.name for layer in _all_layers(model) if _is_random_augmentation(layer)]
    if random_layers:
        raise ValueError(
            f"Invalid value received for argument `backbone`: {model.name!r} holds "
            f"random augmentation layers {random_layers}. A cache stores one view "
            "of each input, so augmentation cannot be cached (it would be "
            "silently off). Move augmentation out of the backbone and train end "
            "to end, or drop it to train on cached features."
        )
    return model


def attach(backbone, head, name=None):
    """One model from raw inputs to predictions: `head(backbone(inputs))`.

    Use it after training `head` on cached features: the result computes
    what the backbone followed by the head computes (the backbone in
    inference mode) and exports with `keras_transfer.export`.

    Args:
        backbone: A `keras.Model` from raw inputs to features, or a
            `keras_transfer.backbones.Backbone`.
        head: A `keras.Model` or layer from features to predictions.
        name: String or `None`. Name of the model.

    Returns:
        A functional `keras.Model` sharing the weights of both parts.

    Example:

    ```python
    backbone = keras_transfer.models.cnn_features((16, 16, 3))  # 16 features
    keras_transfer.freeze(backbone)
    head = keras.Sequential([keras.Input((16,)), keras.layers.Dense(10)])
    # ... train `head` on `keras_transfer.features.extract(backbone, ...)` ...
    model = keras_transfer.features.attach(backbone, head)
    model.output_shape  # (None, 10): raw images in, ready for keras_transfer.export
    ```
    """
    model = feature_model(backbone)
    if not callable(head):
        raise ValueError(
            "Invalid value received for argument `head`. Expected a keras.Model "
            f"or layer. Received: head of type {type(head).__name__}"
        )
    inputs = [
        keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=tensor.name.split(":")[0])
        for tensor in model.inputs
    ]
    features = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], head(features), name=name)


def split(model):
    """`(backbone, head_model)` of a model whose last layer is its head.

    The backbone maps the model's inputs to the head's inputs; the head
    model applies the last layer to features. Both share the weights of
    `model`, so training the head model on cached features trains `model`.

    Args:
        model: A functional `keras.Model` whose output is its last layer's
            output (zoo `feature_extraction/*` models, `build_classifier`).

    Returns:
        `(backbone, head_model)`, two `keras.Model`s.
    """
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None) or not model.layers:
        raise ValueError(
            "Invalid value received for argument `model`. Expected a built "
            f"functional keras.Model. Received: model of type {type(model).__name__}"
        )
    head = model.layers[-1]
    if head.output is not model.outputs[0] or len(model.outputs) != 1:
        raise ValueError(
            f"Invalid value received for argument `model`: the output of "
            f"{model.name!r} is not its last layer ({head.name!r}) applied to "
            "features, so it cannot be split into a backbone and a head."
        )
    backbone = keras.Model(model.inputs, head.input, name=f"{model.name}_backbone")
    inputs = keras.Input(batch_shape=head.input.shape, dtype=head.input.dtype, name="features")
    head_model = keras.Model(inputs, head(inputs), name=f"{model.name}_head")
    return backbone, head_model


def fit_cached(
    model,
    x,
    y=None,
    *,
    cache_dir=None,
    validation_data=None,
    batch_size=32,
    epochs=1,
    callbacks=None,
    shuffle=True,
    seed=0,
    verbose="auto",
    extract_batch_size=64,
):
    """Trains the head of `model` on cached backbone features with plain `fit`.

    `model` is split into its frozen backbone and its head (its last
    layer); the backbone runs once over `x` (and `validation_data`), then a
    model of the head alone, compiled as `model` is, fits on the features.
    The head's weights are `model`'s, so `model` is trained when this
    returns, ready for `evaluate`, `save` and `keras_transfer.export`.
    Callbacks see the head model.

    Args:
        model: A compiled functional model with a frozen backbone whose last
            layer is the head (zoo `feature_extraction/*` tasks).
        x: Inputs, or `(x, y)` batches, as `data` of `extract` takes.
        y: Labels when `x` is an array.
        cache_dir: String, path or `None`. The training features go to
            `<cache_dir>/train`, the validation features to
            `<cache_dir>/validation`. `None`: in memory.
        validation_data: `None`, `(x, y)` arrays or batches, as `x`.
        batch_size: Integer. Batch size of the head's training.
        epochs: Integer. As for `fit`.
        callbacks: List of callbacks, as for `fit`.
        shuffle: Boolean. Shuffle the cached features each epoch.
        seed: Integer. Seed of the shuffling.
        verbose: As for `fit`.
        extract_batch_size: Integer. Batch size of the extraction from arrays.

    Returns:
        The `History` of the head's `fit`.

    Example:

    ```python
    # e.g. "feature_extraction/resnet50", whose backbone comes frozen.
    model = keras_transfer.zoo.build("test/tiny_cnn", 10, input_shape=(16, 16, 3))
    keras_transfer.freeze(model.get_layer("features"))
    x, y = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_val, y_val = keras_transfer.datasets.load_builtin("digits", "test", 16)
    keras_transfer.features.fit_cached(
        model, x[:64], y[:64], validation_data=(x_val[:32], y_val[:32]),
        cache_dir="cache", epochs=2, verbose=0)
    # `model` itself is trained: evaluate, save or keras_transfer.export it.
    ```
    """
    if not getattr(model, "compiled", False):
        raise ValueError(
            "Invalid value received for argument `model`: it is not compiled. "
            "Compile it as for `fit`; the head is trained with its compile settings."
        )
    backbone, head_model = split(model)
    if backbone.trainable_weights:
        raise ValueError(
            f"Invalid value received for argument `model`: the backbone of "
            f"{model.name!r} has {len(backbone.trainable_weights)} trainable "
            "weights, so its features change during training and cached ones "
            "would go stale. Freeze it first (`keras_transfer.freeze`), or train "
            "end to end with `fit`."
        )
    head_model.compile_from_config(model.get_compile_config())

    def cached(data, labels, part):
        folder = None if cache_dir is None else os.path.join(os.fspath(cache_dir), part)
        data = data if labels is None else (data, labels)
        return extract(backbone, data, cache_dir=folder, batch_size=extract_batch_size)

    train = cached(x, y, "train").dataset(batch_size, shuffle=shuffle, seed=seed)
    validation = None
    if validation_data is not None:
        validation = cached(validation_data, None, "validation").dataset(batch_size, shuffle=False)
    # The batches shuffle themselves (a pure function of seed and epoch).
    return head_model.fit(
        train, validation_data=validation, epochs=epochs, callbacks=callbacks,
        verbose=verbose, shuffle=False,
    )


# --- Cache keys -------------------------------------------------------------


def _cache_key(model, precision):
    """What the features depend on besides the data.

    Returns `(key, descriptions)`: the key is compared (digests and
    configurations, no auto-generated names), the descriptions name the
    backbone in error messages.
    """
    layers = list(model.layers)
    first_weighted = next((i for i, layer in enumerate(layers) if layer.weights), len(layers))
    preprocessing = [layer for layer in layers[:first_weighted] if not _is_input(layer)]
    key = {
        "backbone": _config_digest(model, {layer.name for layer in preprocessing}),
        "weights": _weights_digest(model),
        "preprocessing": "; ".join(map(_describe_layer, preprocessing)) or "none",
        "precision": precision,
    }
    descriptions = {
        "backbone": f"{model.name}: {len(layers)} layers, {model.count_params()} parameters",
    }
    return key, descriptions


def _is_input(layer):
    return isinstance(layer, keras.layers.InputLayer)


def _describe_layer(layer):
    config = layer.get_config()
    for name in ("name", "trainable", "dtype"):
        config.pop(name, None)
    return f"{type(layer).__name__}({json.dumps(config, sort_keys=True, default=str)})"


def _config_digest(model, skipped):
    """Digest of the architecture without the layers in `skipped` (by name).

    Independent of auto-generated layer names; the skipped (preprocessing)
    layers keep their place in the graph but not their configuration.
    """
    config = model.get_config()
    for entry in config.get("layers", []):
        if entry.get("name", entry.get("config", {}).get("name")) in skipped:
            entry["config"] = None
    names = {}

    def collect(value):
        if isinstance(value, dict):
            if isinstance(value.get("name"), str):
                names.setdefault(value["name"], f"L{len(names)}")
            for item in value.values():
                collect(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)

    def rename(value):
        if isinstance(value, dict):
            return {k: rename(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [rename(v) for v in value]
        if isinstance(value, str):
            return names.get(value, value)
        return value

    collect(config)
    text = json.dumps(rename(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _weights_digest(model):
    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable.value))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(memoryview(value).cast("B"))
    return digest.hexdigest()[:16]


def _digest(x):
    digest = hashlib.blake2b(digest_size=16)
    for leaf in keras.tree.flatten(x):
        leaf = np.ascontiguousarray(leaf)
        digest.update(f"{leaf.dtype}{leaf.shape}".encode())
        digest.update(memoryview(leaf).cast("B"))
    return digest.hexdigest()


def _all_layers(model):
    stack, seen = list(model.layers), []
    while stack:
        layer = stack.pop(0)
        seen.append(layer)
        if isinstance(layer, keras.Model):
            stack.extend(layer.layers)
        elif isinstance(layer, keras.layers.Pipeline):
            stack.extend(layer.layers)
    return seen


def _is_random_augmentation(layer):
    """Keras' random image layers draw from a `SeedGenerator` named `generator`."""
    return isinstance(getattr(layer, "generator", None), keras.random.SeedGenerator)


# --- Extraction -------------------------------------------------------------


def _resolve_precision(precision):
    if precision not in _PRECISIONS:
        raise ValueError(
            f"Invalid value received for argument `precision`. Expected one of "
            f"{list(_PRECISIONS)}. Received: precision={precision!r}"
        )
    if precision == "auto":
        return "bfloat16" if _has_accelerator() else "float32"
    return precision


def _has_accelerator():
    """Whether the backend computes on a GPU or TPU."""
    if keras.backend.backend() == "torch":  # keras.distribution has no torch support
        import torch

        return torch.cuda.is_available()
    return any(device.split(":")[0] in ("gpu", "tpu") for device in keras.distribution.list_devices())


def _with_precision(model, precision):
    """`model` itself, or a copy that computes under a mixed precision policy."""
    if precision == "float32":
        return model
    policy = _POLICIES[precision]

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy})

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


class _Extractor:
    """Runs the compiled predict function; pads short batches to keep one shape."""

    def __init__(self, model):
        self.model = model
        self.rows = None

    def __call__(self, x):
        rows = len(keras.tree.flatten(x)[0])
        self.rows = self.rows or rows
        if rows < self.rows:  # Inference mode: examples never interact.
            x = keras.tree.map_structure(
                lambda leaf: np.concatenate([leaf, np.repeat(leaf[-1:], self.rows - rows, axis=0)]), x
            )
        features = self.model.predict_on_batch(x)
        return np.asarray(keras.ops.convert_to_numpy(features), dtype="float32")[:rows]


def _batches(data, batch_size):
    """`(x, y or None)` numpy batches of `data`."""
    if isinstance(data, np.ndarray):
        data = (data, None)
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(
                "Invalid value received for argument `data`: a tuple must be "
                f"(x, y) arrays. Received: a tuple of length {len(data)}"
            )
        x = keras.tree.map_structure(np.asarray, data[0])
        y = data[1]
        rows = len(keras.tree.flatten(x)[0])
        if y is not None:
            y = _check_labels(np.asarray(y))
            if len(y) != rows:
                raise ValueError(
                    "Invalid value received for argument `data`: inputs and labels "
                    f"differ in length. Received: len(x)={rows}, len(y)={len(y)}"
                )
        for start in range(0, rows, batch_size):
            part = slice(start, start + batch_size)
            yield (
                keras.tree.map_structure(lambda leaf: leaf[part], x),
                None if y is None else y[part],
            )
        return
    if not hasattr(data, "__iter__") or isinstance(data, (str, bytes, dict)):
        raise ValueError(
            "Invalid value received for argument `data`. Expected an array, "
            "(x, y) arrays, or an iterable of batches (tf.data.Dataset, "
            f"keras.utils.PyDataset). Received: data of type {type(data).__name__}"
        )
    for batch in data:
        if isinstance(batch, tuple):
            x, y = batch[0], batch[1] if len(batch) > 1 else None
        else:
            x, y = batch, None
        x = keras.tree.map_structure(np.asarray, x)
        yield x, None if y is None else _check_labels(np.asarray(y))


def _check_labels(y):
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            "Invalid value received for argument `data`: labels must be integer "
            f"class indices of shape (N,). Received: labels of shape {y.shape} "
            f"and dtype {y.dtype}"
        )
    return y


class _ShardWriter:
    """Collects batches into shards of about `shard_bytes` and hands them to a store."""

    def __init__(self, store, shard_bytes):
        self.store = store
        self.shard_bytes = shard_bytes
        self.pending = []  # (digest, features, labels) of the shard being filled
        self.shards = []
        self.feature_shape = None
        self.labelled = None
        self.computed = 0
        self.reused = 0

    def add(self, digest, features, labels):
        if self.feature_shape is None:
            self.feature_shape = features.shape[1:]
            self.labelled = labels is not None
        if (labels is not None) != self.labelled:
            raise ValueError(
                "Invalid value received for argument `data`: some batches have "
                "labels and some do not. Expected all batches with labels or none."
            )
        self.pending.append((digest, features, labels))
        if sum(f.nbytes for _, f, _ in self.pending) >= self.shard_bytes:
            self._close()

    def _close(self):
        if self.pending:
            self.shards.append(self.store.write(self.pending))
            self.pending = []

    def finish(self):
        self._close()
        self.store.commit(self.shards, self.feature_shape)
        return CachedFeatures(
            self.shards,
            self.feature_shape or (),
            self.computed,
            self.reused,
            self.store.folder,
        )


class _MemoryStore:
    folder = None

    def reusable(self, digest):
        return None

    def write(self, batches):
        features = np.concatenate([f for _, f, _ in batches])
        labels = None if batches[0][2] is None else np.concatenate([y for _, _, y in batches])
        return _Shard(len(features), features, labels)

    def commit(self, shards, feature_shape):
        pass


class _DiskStore:
    """Shards as `.npy` files named by their content, listed by `manifest.json`.

    A shard file is written under a temporary name and renamed into place,
    then the manifest the same way, then files no manifest lists are
    removed: an interrupted run leaves the previous cache intact.
    """

    def __init__(self, folder, key, descriptions):
        self.folder = os.path.abspath(os.fspath(folder))
        self.key = key
        self.descriptions = descriptions
        os.makedirs(self.folder, exist_ok=True)
        self.previous = self._read_manifest()
        # digest -> (features file, first row, rows) of every cached batch
        self.index = {}
        for shard in self.previous.get("shards", []):
            start = 0
            for digest, rows in shard["batches"]:
                self.index[digest] = (shard["features"], start, rows)
                start += rows
        self.open_file, self.open_array = None, None
        self.entries = []

    def _read_manifest(self):
        path = os.path.join(self.folder, _MANIFEST)
        if not os.path.exists(path):
            if os.listdir(self.folder):
                raise ValueError(
                    f"Invalid value received for argument `cache_dir`: "
                    f"{self.folder!r} is not empty and holds no feature cache "
                    f"({_MANIFEST} is missing). Pass an empty or new folder."
                )
            return {}
        with open(path) as f:
            manifest = json.load(f)
        cached = manifest.get("key", {})
        cached_descriptions = manifest.get("descriptions", {})
        different = [name for name in self.key if cached.get(name) != self.key[name]]
        if manifest.get("format") != _FORMAT or different:

            def describe(descriptions, key, name):
                text = descriptions.get(name)
                return f"{text} ({key.get(name)})" if text else repr(key.get(name))

            details = "; ".join(
                f"{name}: cached {describe(cached_descriptions, cached, name)}, "
                f"this run {describe(self.descriptions, self.key, name)}"
                for name in different
            )
            raise ValueError(
                f"Invalid value received for argument `cache_dir`: {self.folder!r} "
                f"holds features computed with a different "
                f"{', '.join(different) or 'cache format'} "
                f"({details or 'format ' + repr(manifest.get('format'))}). Use a "
                "separate cache_dir per backbone, or delete this one."
            )
        return manifest

    def reusable(self, digest):
        if digest not in self.index:
            return None
        file, start, rows = self.index[digest]
        if self.open_file != file:
            self.open_file = file
            self.open_array = np.load(os.path.join(self.folder, file), mmap_mode="r")
        return np.array(self.open_array[start : start + rows])

    def write(self, batches):
        content = hashlib.blake2b(digest_size=8)
        for digest, _, labels in batches:
            content.update(digest.encode())
            if labels is not None:
                content.update(np.ascontiguousarray(labels).tobytes())
        name = f"shard-{len(self.entries):05d}-{content.hexdigest()}"
        features_file = name + ".features.npy"
        labels_file = None if batches[0][2] is None else name + ".labels.npy"
        if not os.path.exists(os.path.join(self.folder, features_file)):
            self._save(features_file, np.concatenate([f for _, f, _ in batches]))
            if labels_file:
                self._save(labels_file, np.concatenate([y for _, _, y in batches]))
        self.entries.append(
            {
                "features": features_file,
                "labels": labels_file,
                "batches": [[digest, len(f)] for digest, f, _ in batches],
            }
        )
        rows = sum(len(f) for _, f, _ in batches)
        return _Shard(
            rows,
            os.path.join(self.folder, features_file),
            None if labels_file is None else os.path.join(self.folder, labels_file),
        )

    def _save(self, name, array):
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=self.folder)
        with os.fdopen(handle, "wb") as f:
            np.save(f, array)
        os.replace(temporary, os.path.join(self.folder, name))

    def commit(self, shards, feature_shape):
        self.open_array = None
        manifest = {
            "format": _FORMAT,
            "key": self.key,
            "descriptions": self.descriptions,
            "feature_shape": list(feature_shape or ()),
            "num_examples": sum(shard.rows for shard in shards),
            "shards": self.entries,
        }
        handle, temporary = tempfile.mkstemp(prefix=f".{_MANIFEST}.", dir=self.folder)
        with os.fdopen(handle, "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(temporary, os.path.join(self.folder, _MANIFEST))
        listed = {_MANIFEST} | {e["features"] for e in self.entries} | {e["labels"] for e in self.entries}
        for name in os.listdir(self.folder):
            if name not in listed and not name.startswith("."):
                os.remove(os.path.join(self.folder, name))
