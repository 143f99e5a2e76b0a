"""tf.data input pipelines for image classification, on every Keras backend.

A dataset is named by a *spec*:

- `"tfds:<name>"`: a TensorFlow Datasets dataset, e.g. `"tfds:cifar10"`.
- `"folder:<path>"`: one sub-folder of images per class (`<path>/<split>/`
  when that exists, else `<path>` itself with `split=None`).
- `"digits"` / `"digits-m"`: the offline built-ins of `load_builtin`.
- `(x, y)`: numpy arrays, images `(N, H, W[, C])` and integer labels `(N,)`.

tf.data feeds `model.fit` on the TensorFlow, JAX and PyTorch backends alike.
"""

import dataclasses
import difflib
import os

import keras
import numpy as np

from keras_transfer.datasets.builtin import list_builtins
from keras_transfer.datasets.builtin import load_builtin
from keras_transfer.datasets.dataset_info import DatasetInfo

_BUILTIN_IMAGE_SIZE = 32
_IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Digits and characters change meaning when mirrored: no flips by default.
_NO_FLIP = {*list_builtins(), "tfds:mnist", "tfds:svhn_cropped", "tfds:emnist", "tfds:kmnist", "tfds:usps"}
_SPEC_FORMS = '"tfds:<name>", "folder:<path>", (x, y) numpy arrays, or a built-in ' + str(list_builtins())


def describe(spec, split="train", *, data_dir=None):
    """Describe a dataset without reading its images.

    Args:
        spec: Dataset spec: `"tfds:<name>"`, `"folder:<path>"`, a built-in
            name (`"digits"`, `"digits-m"`) or a tuple `(x, y)` of arrays.
        split: String or `None`. The split, as for `load`. Defaults to
            `"train"`.
        data_dir: String or `None`. TensorFlow Datasets data directory.

    Returns:
        A `keras_transfer.datasets.DatasetInfo`.

    Example:

    >>> info = keras_transfer.datasets.describe("digits-m")
    >>> info.num_classes, info.image_shape
    (10, (32, 32, 3))
    """
    kind, value = _parse_spec(spec)
    if kind == "tfds":
        return _describe_tfds(value, split, data_dir)
    if kind == "folder":
        return _describe_folder(value, split)
    if kind == "builtin":
        _, y = load_builtin(value, split, image_size=8)
        shape = (_BUILTIN_IMAGE_SIZE, _BUILTIN_IMAGE_SIZE, 3)
        return DatasetInfo(value, 10, tuple(str(i) for i in range(10)), shape, len(y))
    x, y = value
    num_classes = int(y.max()) + 1
    shape = tuple(x.shape[1:]) if x.ndim == 4 else tuple(x.shape[1:]) + (1,)
    return DatasetInfo("arrays", num_classes, tuple(str(i) for i in range(num_classes)), shape, len(y))


def labels(spec, split="train", *, data_dir=None):
    """The labels of a dataset split, in its stored order, without its images.

    Position `i` of the result is the example that `load(spec, split,
    indices=[i])` keeps, so a subset (a stratified validation split, say)
    can be chosen from the labels and loaded by position.

    Args:
        spec: Dataset spec, as for `load`.
        split: String or `None`. The split, as for `load`. Defaults to
            `"train"`.
        data_dir: String or `None`. TensorFlow Datasets data directory.

    Returns:
        An int64 numpy array of class indices.

    Example:

    >>> y = keras_transfer.datasets.labels("digits", "train")
    >>> validation = keras_transfer.datasets.load(
    ...     "digits", "train", indices=np.flatnonzero(y == 3), shuffle=False)
    """
    kind, value = _parse_spec(spec)
    if kind == "tfds":
        tfds = _import_tfds()
        _describe_tfds(value, split, data_dir)  # Checks the split.
        image_key, _ = tfds.builder(value, data_dir=data_dir).info.supervised_keys
        dataset = tfds.load(
            value,
            split=split,
            as_supervised=True,
            shuffle_files=False,
            data_dir=data_dir,
            decoders={image_key: tfds.decode.SkipDecoding()},
        )
        return np.array([label for _, label in tfds.as_numpy(dataset)], dtype="int64")
    if kind == "folder":
        root = _folder_root(value, split)
        listing = keras.utils.image_dataset_from_directory(
            root, batch_size=None, shuffle=False, verbose=False
        )
        classes = list(listing.class_names)
        return np.array(
            [
                classes.index(os.path.relpath(path, root).split(os.sep)[0])
                for path in listing.file_paths
            ],
            dtype="int64",
        )
    if kind == "builtin":
        return load_builtin(value, split, image_size=8)[1].astype("int64")
    return np.asarray(value[1], dtype="int64")


def load(
    spec,
    split="train",
    *,
    image_size=None,
    channels=None,
    batch_size=32,
    preprocessing=None,
    augment=None,
    shuffle=None,
    shuffle_buffer=1024,
    num_classes=None,
    seed=0,
    data_dir=None,
    indices=None,
    with_info=False,
):
    """Build a batched `tf.data.Dataset` of `(images, labels)` for `model.fit`.

    Images come out float32 with raw pixel values (0..255), resized to
    `image_size`; zoo models carry their own preprocessing, so an exported
    model takes the same raw pixels. Labels come out int64 class indices.

    Args:
        spec: Dataset spec: `"tfds:<name>"`, `"folder:<path>"`, a built-in
            name (`"digits"`, `"digits-m"`) or a tuple `(x, y)` of arrays.
        split: String or `None`. For tfds any split string
            (`"train[:80%]"`); for built-ins `"train"` or `"test"`; for a
            folder the sub-folder to read, or `None` for the folder itself;
            for arrays only the defaults of `augment`/`shuffle` depend on it.
            Defaults to `"train"`.
        image_size: Integer, `(height, width)` or `None` (keep the stored
            size; required when images differ in size). Built-ins are
            rendered at this size (default 32).
        channels: `None` (keep), `1` or `3`. Converts grayscale to RGB or
            back, e.g. MNIST for an ImageNet backbone.
        batch_size: Integer. Defaults to `32`.
        preprocessing: Callable or `None`. Applied to each image batch after
            augmentation, inside tf.data: a Keras preprocessing layer
            (`keras.layers.Rescaling(1 / 255)`) or a function of tf tensors.
        augment: `None` (augment when `split` starts with `"train"`), `True`
            (random flip, small rotation and translation; no flip for digit
            datasets), `False`, or a tf.data-compatible Keras layer such as
            `keras.layers.Pipeline([...])`.
        shuffle: Boolean or `None` (shuffle when `split` starts with
            `"train"`).
        shuffle_buffer: Integer. Shuffle buffer size. Defaults to `1024`.
        num_classes: Integer or `None`. When given, must equal the dataset's
            number of classes.
        seed: Integer. Seed of shuffling, augmentation and built-in patches.
        data_dir: String or `None`. TensorFlow Datasets data directory.
        indices: 1-D integer array or `None`. Keep only the examples at
            these positions of the split's stored order (the order of
            `keras_transfer.datasets.labels`), e.g. a validation subset
            carved from `"train"`. Defaults to `None` (all examples).
        with_info: Boolean. Also return the `DatasetInfo`, its
            `image_shape` being that of the images the dataset yields.

    Returns:
        A `tf.data.Dataset`, or `(dataset, info)` when `with_info=True`.

    Example:

    >>> train = keras_transfer.datasets.load("tfds:cifar10", "train", image_size=96)
    >>> model.fit(train, epochs=3)
    """
    import tensorflow as tf

    info = describe(spec, split, data_dir=data_dir)
    info.check(num_classes=num_classes)
    size = _image_size_pair(image_size)
    if size is None and None in info.image_shape[:2]:
        raise ValueError(
            f"Dataset {info.name!r} has images of varying size "
            f"{info.image_shape}; pass `image_size` to resize them. "
            "Received: image_size=None"
        )
    if channels not in (None, 1, 3):
        raise ValueError(
            "Invalid value received for argument `channels`. Expected None, 1 "
            f"or 3. Received: channels={channels!r}"
        )
    training = isinstance(split, str) and split.startswith("train")
    shuffle = training if shuffle is None else shuffle
    augmentation = _augmentation(augment, training, info.name, seed)

    if indices is not None:
        indices = _check_indices(indices, info.num_examples)
    dataset = _read(spec, split, size, shuffle, seed, data_dir, indices)

    def prepare(image, label):
        image = tf.cast(image, "float32")
        if channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        elif channels == 1 and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        if size is not None and tuple(image.shape[:2]) != size:
            image = tf.image.resize(image, size)
        return image, tf.cast(label, "int64")

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.batch(batch_size)
    if augmentation is not None:
        # Sequential on purpose: Keras' random layers draw from a stateful
        # seed variable, and parallel calls would race on it, making the
        # augmentation of a given batch depend on thread timing instead of
        # `seed` (observed: two loads with seed=3 differed in their first batch).
        dataset = dataset.map(lambda x, y: (augmentation(x), y))
    if preprocessing is not None:
        dataset = dataset.map(
            lambda x, y: (preprocessing(x), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    if not with_info:
        return dataset
    height_width = size or info.image_shape[:2]
    output_shape = tuple(height_width) + (channels or info.image_shape[-1],)
    count = info.num_examples if indices is None else len(indices)
    return dataset, dataclasses.replace(info, image_shape=output_shape, num_examples=count)


def _parse_spec(spec):
    """Return `(kind, value)` with kind in tfds, folder, builtin, arrays."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        x, y = (np.asarray(part) for part in spec)
        if x.ndim not in (3, 4) or y.ndim != 1 or len(x) != len(y) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                "Invalid value received for argument `spec`: arrays must be "
                "images (N, H, W) or (N, H, W, C) and integer labels (N,). "
                f"Received: x.shape={x.shape}, y.shape={y.shape}, y.dtype={y.dtype}"
            )
        return "arrays", (x, y)
    if isinstance(spec, str):
        for prefix in ("tfds", "folder"):
            if spec.startswith(prefix + ":") and spec[len(prefix) + 1 :]:
                return prefix, spec[len(prefix) + 1 :]
        if spec in list_builtins():
            return "builtin", spec
        close = difflib.get_close_matches(spec, list_builtins(), n=1, cutoff=0.3)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Invalid value received for argument `spec`: unknown dataset.{hint} "
            f"Expected {_SPEC_FORMS}. Received: spec={spec!r}"
        )
    raise ValueError(
        f"Invalid value received for argument `spec`. Expected {_SPEC_FORMS}. "
        f"Received: spec of type {type(spec).__name__}"
    )


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "Loading 'tfds:' datasets needs TensorFlow Datasets: "
            "pip install 'keras-transfer[datasets]'"
        ) from error
    return tfds


def _describe_tfds(name, split, data_dir):
    if not isinstance(split, str):
        raise ValueError(
            "Invalid value received for argument `split`: 'tfds:' datasets need "
            f"a split string such as 'train' or 'test[:50%]'. Received: split={split!r}"
        )
    info = _import_tfds().builder(name, data_dir=data_dir).info
    if not info.supervised_keys:
        raise ValueError(
            f"TensorFlow Datasets dataset {name!r} has no (image, label) "
            "supervised keys, so it cannot be loaded for classification. "
            f"Received: spec='tfds:{name}'"
        )
    image_key, label_key = info.supervised_keys
    labels = info.features[label_key]
    # Splits are known only once the dataset is prepared (downloaded).
    num_examples = info.splits[split].num_examples if info.splits else None
    return DatasetInfo(
        f"tfds:{name}",
        labels.num_classes,
        tuple(labels.names),
        tuple(info.features[image_key].shape),
        num_examples,
    )


def _folder_root(path, split):
    if not os.path.isdir(path):
        raise ValueError(
            "Invalid value received for argument `spec`: no such folder. "
            f"Received: spec='folder:{path}'"
        )
    if split is None:
        return path
    root = os.path.join(path, split)
    if not os.path.isdir(root):
        raise ValueError(
            f"Invalid value received for argument `split`: folder {path!r} has "
            f"no sub-folder {split!r} (it has {sorted(os.listdir(path))}). Pass "
            f"split=None to read {path!r} itself as one sub-folder per class. "
            f"Received: split={split!r}"
        )
    return root


def _describe_folder(path, split):
    root = _folder_root(path, split)
    classes = sorted(entry for entry in os.listdir(root) if os.path.isdir(os.path.join(root, entry)))
    if not classes:
        raise ValueError(
            f"Folder {root!r} has no class sub-folders; expected one sub-folder "
            f"of images per class. Received: spec='folder:{path}', split={split!r}"
        )
    count = sum(
        name.lower().endswith(_IMAGE_EXTENSIONS)
        for label in classes
        for _, _, files in os.walk(os.path.join(root, label))
        for name in files
    )
    return DatasetInfo(f"folder:{path}", len(classes), tuple(classes), (None, None, 3), count)


def _image_size_pair(image_size):
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(
            "Invalid value received for argument `image_size`. Expected a "
            f"positive integer or (height, width). Received: image_size={image_size!r}"
        )
    return tuple(int(v) for v in pair)


def _augmentation(augment, training, name, seed):
    if augment is None:
        augment = training
    if augment is False:
        return None
    if augment is True:
        layers = [] if name in _NO_FLIP else [keras.layers.RandomFlip("horizontal", seed=seed)]
        layers += [
            keras.layers.RandomRotation(0.05, seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed),
        ]
        return keras.layers.Pipeline(layers)
    if callable(augment):
        return augment
    raise ValueError(
        "Invalid value received for argument `augment`. Expected None, True, "
        f"False or a callable layer. Received: augment={augment!r}"
    )


def _check_indices(indices, num_examples):
    """`indices` as sorted, distinct int64 positions within the split."""
    array = np.asarray(indices)
    valid = array.ndim == 1 and array.size and np.issubdtype(array.dtype, np.integer)
    valid = valid and array.min() >= 0 and len(np.unique(array)) == len(array)
    if valid and num_examples is not None:
        valid = array.max() < num_examples
    if not valid:
        size = "" if num_examples is None else f" below {num_examples}"
        raise ValueError(
            "Invalid value received for argument `indices`. Expected a "
            f"non-empty 1-D array of distinct integers >= 0{size}. "
            f"Received: indices={indices!r}"
        )
    return np.sort(array).astype("int64")


def _keep_positions(dataset, indices):
    """The examples of `dataset` at `indices` (sorted), in stored order."""
    import tensorflow as tf

    mask = np.zeros(int(indices[-1]) + 1, dtype=bool)
    mask[indices] = True
    keep = tf.constant(mask)
    return (
        dataset.take(len(mask))
        .enumerate()
        .filter(lambda position, example: tf.gather(keep, position))
        .map(lambda position, example: example)
        # A filter hides the length; `fit` needs it (steps per epoch).
        .apply(tf.data.experimental.assert_cardinality(len(indices)))
    )


def _read(spec, split, size, shuffle, seed, data_dir, indices=None):
    """The unbatched `(image, label)` dataset of a spec (`indices`: a subset)."""
    import tensorflow as tf

    if indices is not None:
        # Positions refer to the stored order: read it unshuffled, keep the
        # subset, and let `load` shuffle the examples afterwards.
        whole = _read(spec, split, size, False, seed, data_dir)
        return _keep_positions(whole, indices)

    kind, value = _parse_spec(spec)
    if kind == "tfds":
        tfds = _import_tfds()
        return tfds.load(
            value,
            split=split,
            as_supervised=True,
            shuffle_files=shuffle,
            data_dir=data_dir,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        )
    if kind == "folder":
        return keras.utils.image_dataset_from_directory(
            _folder_root(value, split),
            batch_size=None,
            image_size=size,
            shuffle=shuffle,
            seed=seed,
            verbose=False,
        )
    if kind == "builtin":
        # Rendered square; `prepare` resizes to a non-square `image_size`.
        value = load_builtin(value, split, image_size=max(size) if size else _BUILTIN_IMAGE_SIZE, seed=seed)
    x, y = value
    if x.ndim == 3:
        x = x[..., None]
    return tf.data.Dataset.from_tensor_slices((x, y))
