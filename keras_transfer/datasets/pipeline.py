"""tf.data input pipelines for image and text classification, on every Keras backend.

A dataset is named by a *spec*:

- `"tfds:<name>"`: a TensorFlow Datasets dataset, e.g. `"tfds:cifar10"`, or
  a text one such as `"tfds:imdb_reviews"`.
- `"folder:<path>"`: one sub-folder of images per class (`<path>/<split>/`
  when that exists, else `<path>` itself with `split=None`).
- `"csv:<file>"`: text examples, a CSV file with a header and the columns
  `text` and `label` (a class name, or an integer class index), read whole
  with `split=None`.
- `"digits"` / `"digits-m"`: the offline built-ins of `load_builtin`.
- `(x, y)`: numpy arrays, images `(N, H, W[, C])` and integer labels `(N,)`.

tf.data feeds `model.fit` on the TensorFlow, JAX and PyTorch backends alike.
"""

import dataclasses
import difflib
import functools
import os
import warnings

import numpy as np

from keras_transfer.datasets._labels import assert_labels_in_pipeline
from keras_transfer.datasets._labels import check_label_array
from keras_transfer.datasets.builtin import list_builtins
from keras_transfer.datasets.builtin import load_builtin
from keras_transfer.datasets.dataset_info import DatasetInfo
from keras_transfer.datasets.epochs import keyed_passes
from keras_transfer.datasets.epochs import register_counter

_BUILTIN_IMAGE_SIZE = 32
_IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Digits and characters change meaning when mirrored: no flips by default.
_NO_FLIP = {*list_builtins(), "tfds:mnist", "tfds:svhn_cropped", "tfds:emnist", "tfds:kmnist", "tfds:usps"}
_SPEC_FORMS = (
    '"tfds:<name>", "folder:<path>", "csv:<file>", (x, y) numpy arrays, or a built-in '
    + str(list_builtins())
)


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
    if kind == "csv":
        texts, label_array, class_names = _read_csv(value, split)
        return DatasetInfo(f"csv:{value}", len(class_names), class_names, (), len(texts))
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
        return np.array([label for _, label in _folder_files(value, split)], dtype="int64")
    if kind == "csv":
        return _read_csv(value, split)[1]
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
    skip_bad_images=False,
    token_ids=None,
    with_info=False,
):
    """Build a batched `tf.data.Dataset` of `(images, labels)` for `model.fit`.

    Text datasets (`"csv:<file>"`, text `"tfds:"` datasets; their
    `DatasetInfo.image_shape` is `()`) yield `(strings, labels)`, or
    `(token ids, labels)` with `token_ids`; they are never augmented.

    Images come out float32 with raw pixel values (0..255), resized to
    `image_size`; zoo models carry their own preprocessing, so an exported
    model takes the same raw pixels. Labels come out int64 class indices,
    checked to lie in `[0, num_classes)` (numpy labels at once, tfds labels
    as they are read).

    Each pass over a shuffled or augmented dataset is drawn from `seed` and
    the pass number (0, 1, ...), not from state that advances as it is
    read, so training is reproducible and a run resumed by
    `keras.callbacks.BackupAndRestore` sees the same data as an
    uninterrupted one when `keras_transfer.datasets.EpochSync(dataset)` is
    among the callbacks (it sets the pass number to the epoch).

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
            (random horizontal flip, rotation up to 18 degrees and shifts up
            to 10% of the side, bilinear with reflected borders; no flip for
            digit datasets), `False`, or a tf.data-compatible Keras layer
            such as `keras.layers.Pipeline([...])` (it draws from its own
            random state, so resumed runs see other augmentations).
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
        token_ids: `None` or `(vocabulary_size, sequence_length)`. Text
            datasets only: turn each text into `sequence_length` int32 ids,
            lower-cased words hashed into `[1, vocabulary_size)`
            (`tf.strings.to_hash_bucket_fast`), padded with 0 or truncated.
            Defaults to `None` (raw strings, for models that tokenize
            inside, such as KerasHub tasks).
        skip_bad_images: Boolean. For `"folder:"` datasets: decode every
            image first and leave out the files that cannot be decoded
            (they are listed in a warning). Defaults to `False`: a file that
            cannot be decoded stops iteration with TensorFlow's error; then
            `keras_transfer.datasets.find_unreadable_images` names it.
        with_info: Boolean. Also return the `DatasetInfo`, its
            `image_shape` being that of the images the dataset yields.

    Returns:
        A `tf.data.Dataset`, or `(dataset, info)` when `with_info=True`.

    Example:

    ```python
    # "tfds:cifar10" or "folder:photos" load the same way; "digits" is offline.
    train = keras_transfer.datasets.load("digits", "train", image_size=16)
    images, labels = next(iter(train))
    images.shape, images.dtype  # (TensorShape([32, 16, 16, 3]), tf.float32)
    model = keras_transfer.zoo.build("test/tiny_cnn", 10, input_shape=(16, 16, 3))
    model.fit(train.take(2), epochs=1, verbose=0)
    ```
    """
    import tensorflow as tf

    info = describe(spec, split, data_dir=data_dir)
    info.check(num_classes=num_classes)
    kind, value = _parse_spec(spec)
    if indices is not None:
        indices = _check_indices(indices, info.num_examples)
        info = dataclasses.replace(info, num_examples=len(indices))
    skipped = []
    if skip_bad_images:
        if kind != "folder":
            raise ValueError(
                "Invalid value received for argument `skip_bad_images`: only "
                "'folder:' datasets are decoded file by file. Received: "
                f"skip_bad_images=True with spec={info.name!r}"
            )
        skipped = find_unreadable_images(spec, split)
        if indices is not None:
            kept = {_folder_files(value, split)[i][0] for i in indices}
            skipped = [path for path in skipped if path in kept]
        if skipped:
            warnings.warn(
                f"Skipped {len(skipped)} image(s) of {info.name!r} split "
                f"{split!r} that cannot be decoded: {', '.join(skipped[:5])}"
                f"{' ...' if len(skipped) > 5 else ''}",
                stacklevel=2,
            )
            info = dataclasses.replace(info, num_examples=info.num_examples - len(skipped))
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
    text = info.image_shape == ()
    if text:
        if augment not in (None, False):
            raise ValueError(
                f"Invalid value received for argument `augment`: {info.name!r} "
                f"is a text dataset, which is not augmented. Expected None or "
                f"False. Received: augment={augment!r}"
            )
        augment = False
        tokenize = _tokenizer(token_ids)
    elif token_ids is not None:
        raise ValueError(
            f"Invalid value received for argument `token_ids`: {info.name!r} "
            f"is not a text dataset. Received: token_ids={token_ids!r}"
        )
    augment = _check_augment(training if augment is None else augment)

    source = _read(kind, value, split, size, seed, data_dir, set(skipped), indices)

    def prepare(image, label):
        if text:
            return tokenize(image), tf.cast(label, "int64")
        image = tf.cast(image, "float32")
        if channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        elif channels == 1 and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        if size is not None and tuple(image.shape[:2]) != size:
            image = tf.image.resize(image, size)
        label = tf.cast(label, "int64")
        if kind == "tfds":
            # Some tfds splits mark unlabelled examples with -1.
            label = assert_labels_in_pipeline(label, info.num_classes, "spec")
        return image, label

    counter = None
    if shuffle or augment is not False:
        dataset, counter = keyed_passes(
            source,
            prepare,
            batch_size,
            shuffle_buffer if shuffle else False,
            None if augment is False else augment,
            flip=info.name not in _NO_FLIP,
            seed=seed,
            num_examples=info.num_examples,
        )
    else:
        if not isinstance(source, tf.data.Dataset):
            table, decode = source
            source = tf.data.Dataset.from_tensor_slices(table).map(decode)
        dataset = source.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    if preprocessing is not None:
        dataset = dataset.map(
            lambda x, y: (preprocessing(x), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    if counter is not None:
        register_counter(dataset, counter)
    if not with_info:
        return dataset
    if text:
        output_shape = () if token_ids is None else (int(token_ids[1]),)
    else:
        height_width = size or info.image_shape[:2]
        output_shape = tuple(height_width) + (channels or info.image_shape[-1],)
    return dataset, dataclasses.replace(info, image_shape=output_shape)


def _tokenizer(token_ids):
    """The text -> int32 ids function of `load(token_ids=...)`, or identity."""
    import tensorflow as tf

    if token_ids is None:
        return lambda text: text
    valid = isinstance(token_ids, (tuple, list)) and len(token_ids) == 2
    valid = valid and all(isinstance(v, (int, np.integer)) and v >= 1 for v in token_ids)
    if not valid or token_ids[0] < 2:
        raise ValueError(
            "Invalid value received for argument `token_ids`. Expected "
            "(vocabulary_size >= 2, sequence_length >= 1). "
            f"Received: token_ids={token_ids!r}"
        )
    vocabulary_size, length = (int(v) for v in token_ids)

    def tokenize(text):
        words = tf.strings.split(tf.strings.lower(text))[:length]
        ids = tf.strings.to_hash_bucket_fast(words, vocabulary_size - 1) + 1
        ids = tf.pad(ids, [[0, length - tf.shape(ids)[0]]])
        return tf.ensure_shape(tf.cast(ids, "int32"), (length,))

    return tokenize


def _parse_spec(spec):
    """Return `(kind, value)` with kind in tfds, folder, builtin, arrays."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        x, y = (np.asarray(part) for part in spec)
        if (
            x.ndim not in (3, 4)
            or y.ndim != 1
            or len(x) != len(y)
            or not len(y)
            or not np.issubdtype(y.dtype, np.integer)
        ):
            raise ValueError(
                "Invalid value received for argument `spec`: arrays must be "
                "at least one image, (N, H, W) or (N, H, W, C), and integer "
                f"labels (N,). Received: x.shape={x.shape}, y.shape={y.shape}, "
                f"y.dtype={y.dtype}"
            )
        check_label_array(y, None, "spec")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                "Invalid value received for argument `spec`: images must be "
                f"finite. Received: x[{', '.join(map(str, bad))}]={x[tuple(bad)]}"
            )
        return "arrays", (x, y)
    if isinstance(spec, str):
        for prefix in ("tfds", "folder", "csv"):
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
    classes = _folder_classes(root)
    if not classes:
        raise ValueError(
            f"Folder {root!r} has no class sub-folders; expected one sub-folder "
            f"of images per class. Received: spec='folder:{path}', split={split!r}"
        )
    count = len(_folder_files(path, split))
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


def _check_augment(augment):
    if augment is True or augment is False or callable(augment):
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


def _read(kind, value, split, size, seed, data_dir, skip, indices=None):
    """The examples of a parsed spec, in stored order.

    A tfds dataset is a stream: a `tf.data.Dataset` of `(image, label)`,
    its files read in one order drawn from `seed`. Everything else is
    `(table, decode)`: tensors with one row per example and the function
    that turns a row into `(image, label)`, so that `keyed_passes` can read
    the rows in any order. `indices` (sorted positions) keeps a subset.
    """
    import tensorflow as tf

    if kind == "tfds":
        tfds = _import_tfds()
        stream = tfds.load(
            value,
            split=split,
            as_supervised=True,
            # Positions refer to the stored order: no file shuffling then.
            shuffle_files=indices is None,
            data_dir=data_dir,
            read_config=tfds.ReadConfig(
                shuffle_seed=seed, shuffle_reshuffle_each_iteration=False
            ),
        )
        return stream if indices is None else _keep_positions(stream, indices)
    if kind == "folder":
        files = _folder_files(value, split)
        if indices is not None:
            files = [files[i] for i in indices]
        files = [(p, label) for p, label in files if p not in skip]
        paths, labels = zip(*files) if files else ((), ())

        def decode(path, label):
            image = tf.io.decode_image(
                tf.io.read_file(path), channels=3, expand_animations=False
            )
            return image, label

        return (tf.constant(paths, tf.string), tf.constant(labels, tf.int64)), decode
    if kind == "csv":
        texts, label_array, _ = _read_csv(value, split)
        if indices is not None:
            texts, label_array = texts[indices], label_array[indices]
        table = (tf.constant(texts, tf.string), tf.constant(label_array, tf.int64))
        return table, lambda text, label: (text, label)
    if kind == "builtin":
        # Rendered square; `prepare` resizes to a non-square `image_size`.
        value = load_builtin(value, split, image_size=max(size) if size else _BUILTIN_IMAGE_SIZE, seed=seed)
    x, y = value
    if indices is not None:
        x, y = x[indices], y[indices]
    if x.ndim == 3:
        x = x[..., None]
    return (tf.constant(x), tf.constant(y)), lambda image, label: (image, label)


def _read_csv(path, split):
    """`(texts, labels, class_names)` of a `"csv:"` file (numpy arrays, a tuple)."""
    if split is not None:
        raise ValueError(
            "Invalid value received for argument `split`: a 'csv:' file has no "
            f"splits; it is read whole with split=None. Received: split={split!r}"
        )
    if not os.path.isfile(path):
        raise ValueError(
            "Invalid value received for argument `spec`: no such file. "
            f"Received: spec='csv:{path}'"
        )
    return _parse_csv(os.path.abspath(path), os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parse_csv(path, modified):
    """Reads a `text,label` CSV once per version (`modified`) of the file."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"text", "label"} <= set(reader.fieldnames or ()):
            raise ValueError(
                f"CSV file {path!r} must have a header with the columns 'text' "
                f"and 'label'. Received: columns {reader.fieldnames}"
            )
        rows = [(row["text"], (row["label"] or "").strip()) for row in reader]
    if not rows:
        raise ValueError(f"CSV file {path!r} has no examples (only a header).")
    texts = np.array([text or "" for text, _ in rows], dtype=object)
    raw = [label for _, label in rows]
    if all(label.lstrip("-").isdigit() for label in raw):
        label_array = np.array([int(label) for label in raw], dtype="int64")
        bad = np.flatnonzero(label_array < 0)
        if bad.size:
            raise ValueError(
                f"CSV file {path!r}, row {bad[0] + 2}: integer labels must be "
                f"class indices >= 0. Received: label={label_array[bad[0]]}"
            )
        class_names = tuple(str(i) for i in range(int(label_array.max()) + 1))
    else:
        if "" in raw:
            raise ValueError(
                f"CSV file {path!r}, row {raw.index('') + 2}: empty label."
            )
        class_names = tuple(sorted(set(raw)))
        index = {name: i for i, name in enumerate(class_names)}
        label_array = np.array([index[label] for label in raw], dtype="int64")
    return texts, label_array, class_names


def _folder_classes(root):
    return sorted(entry for entry in os.listdir(root) if os.path.isdir(os.path.join(root, entry)))


def _folder_files(path, split):
    """Sorted `(image path, label)` pairs of a class-per-sub-folder dataset."""
    root = _folder_root(path, split)
    return [
        (os.path.join(folder, name), label)
        for label, class_name in enumerate(_folder_classes(root))
        for folder, _, names in sorted(os.walk(os.path.join(root, class_name)))
        for name in sorted(names)
        if name.lower().endswith(_IMAGE_EXTENSIONS)
    ]


def find_unreadable_images(spec, split=None):
    """Paths of the images of a `"folder:"` dataset that cannot be decoded.

    Decodes every image with the decoder `load` uses (`tf.io.decode_image`:
    BMP, GIF, JPEG, PNG), so it reads the whole dataset once.

    Args:
        spec: `"folder:<path>"`.
        split: The sub-folder, or `None` for the folder itself.

    Returns:
        A sorted list of paths; empty when every image decodes.

    Example:

    ```python
    import os

    os.makedirs("photos/train/cat")
    keras.utils.save_img("photos/train/cat/ok.png", np.zeros((8, 8, 3)))
    with open("photos/train/cat/broken.jpg", "wb") as file:
        file.write(b"not a JPEG")
    keras_transfer.datasets.find_unreadable_images("folder:photos", "train")
    # ['photos/train/cat/broken.jpg']
    ```
    """
    import tensorflow as tf

    kind, value = _parse_spec(spec)
    if kind != "folder":
        raise ValueError(
            "Invalid value received for argument `spec`: only 'folder:' "
            f"datasets are read file by file. Received: spec={spec!r}"
        )
    bad = []
    for path, _ in _folder_files(value, split):
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            bad.append(path)
    return bad
