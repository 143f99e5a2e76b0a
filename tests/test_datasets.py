import keras
import numpy as np
import pytest

from keras_transfer import datasets


TARGETS = [
    "digits-m",
    "digits-rotated",
    "digits-noisy",
    "digits-colored",
    "digits-combined",
    "digits-sensor",
]


@pytest.mark.parametrize("name", ["digits", *TARGETS])
@pytest.mark.parametrize("split", ["train", "test"])
def test_builtin_shapes_dtypes_and_balanced_labels(name, split):
    x, y = datasets.load_builtin(name, split, image_size=16)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    assert x.shape == (len(y), 16, 16, 3)
    assert 170 <= len(y) <= 180 if split == "test" else 710 <= len(y) <= 730
    from sklearn.datasets import load_digits

    fraction = 0.4 if split == "train" else 0.1
    class_sizes = np.bincount(load_digits().target)
    assert np.all(np.abs(np.bincount(y, minlength=10) - fraction * class_sizes) <= 1)
    assert x.max() > 200 and x.min() < 20


def _fingerprints(x):
    return {hash(image.tobytes()) for image in x}


def test_builtin_domains_and_splits_use_disjoint_digit_images():
    from sklearn.datasets import load_digits

    from keras_transfer.datasets import builtin

    parts = builtin._split_indices(load_digits().target)
    flat = np.concatenate(parts)
    assert len(flat) == len(set(flat.tolist())) == 1797
    source_train, _ = datasets.load_builtin("digits", "train", image_size=8)
    source_test, _ = datasets.load_builtin("digits", "test", image_size=8)
    assert not _fingerprints(source_train) & _fingerprints(source_test)


def test_builtin_is_deterministic_and_seed_changes_only_patches():
    a, ya = datasets.load_builtin("digits-m", "train", image_size=16, seed=0)
    b, yb = datasets.load_builtin("digits-m", "train", image_size=16, seed=0)
    c, yc = datasets.load_builtin("digits-m", "train", image_size=16, seed=1)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yc)
    assert np.mean(a != c) > 0.5


def test_builtin_target_is_abs_difference_of_patch_and_source_digit():
    from sklearn.datasets import load_digits

    from keras_transfer.datasets import builtin

    index = builtin._split_indices(load_digits().target)[2]
    grey = builtin._upscale(load_digits().images[index] * (255.0 / 16.0), 16)
    patches = builtin._photo_patches(len(index), 16, np.random.RandomState([0, 0]))
    expected = np.rint(np.abs(patches - grey[..., None]))
    x, _ = datasets.load_builtin("digits-m", "train", image_size=16)
    np.testing.assert_array_equal(x, expected.astype("uint8"))
    # Colour: the channels differ, unlike the grey source domain.
    assert np.mean(np.abs(x[..., 0].astype(int) - x[..., 2])) > 5
    source, _ = datasets.load_builtin("digits", "train", image_size=16)
    np.testing.assert_array_equal(source[..., 0], source[..., 2])


def test_builtin_train_and_test_patches_are_distinct_crops_of_one_distribution():
    from keras_transfer.datasets import builtin

    train = builtin._photo_patches(400, 16, np.random.RandomState([0, 0]))
    test = builtin._photo_patches(400, 16, np.random.RandomState([0, 1]))
    # Separate random streams: the splits are different crops (a few flat
    # sky crops may coincide by content) ...
    shared = _fingerprints(train.astype("uint8")) & _fingerprints(test.astype("uint8"))
    assert len(shared) < 0.05 * len(train)
    # ... but one distribution (as MNIST-M): same photos, same regions, so the
    # mean colour and brightness spread agree while a single photo differs.
    np.testing.assert_allclose(train.mean((0, 1, 2)), test.mean((0, 1, 2)), atol=12)
    train_brightness, test_brightness = train.mean((1, 2, 3)), test.mean((1, 2, 3))
    np.testing.assert_allclose(
        np.percentile(train_brightness, [25, 50, 75]),
        np.percentile(test_brightness, [25, 50, 75]),
        atol=20,
    )
    china, flower = (photo.astype("float32").mean() for photo in builtin._photos())
    assert abs(china - flower) > 12


def _target_grey(split, size):
    """The clean target-domain digits every shift starts from."""
    from sklearn.datasets import load_digits

    from keras_transfer.datasets import builtin

    index = builtin._split_indices(load_digits().target)[2 if split == "train" else 3]
    return builtin._upscale(load_digits().images[index] * (255.0 / 16.0), size)


@pytest.mark.parametrize("name", TARGETS)
def test_builtin_shifts_share_target_digits_and_draw_by_seed(name):
    _, y_m = datasets.load_builtin("digits-m", "test", image_size=16)
    a, y = datasets.load_builtin(name, "test", image_size=16, seed=0)
    b, _ = datasets.load_builtin(name, "test", image_size=16, seed=0)
    c, _ = datasets.load_builtin(name, "test", image_size=16, seed=1)
    np.testing.assert_array_equal(y, y_m)  # same target digit images
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3
    # Each shift really moves the images away from the clean target digits.
    clean = _target_grey("test", 16)[..., None]
    assert np.mean(np.abs(a.astype("float32") - clean)) > 15


def test_builtin_rotated_digits_turn_20_to_45_degrees_and_keep_their_ink():
    clean = _target_grey("train", 32)
    x, _ = datasets.load_builtin("digits-rotated", "train", image_size=32)
    grey = x[..., 0].astype("float32")
    np.testing.assert_array_equal(x[..., 0], x[..., 2])
    # Ink is kept (bilinear resampling, digits stay inside the frame mostly).
    ratio = grey.sum((1, 2)) / clean.sum((1, 2))
    assert 0.8 < np.median(ratio) < 1.1
    # Best matching angle, searched over -60..60 degrees, is 20-45 degrees away.
    from PIL import Image

    angles = np.arange(-60, 61, 5)
    for image, target in zip(clean[:20], grey[:20]):
        errors = [
            np.abs(np.asarray(Image.fromarray(image, mode="F").rotate(a, Image.BILINEAR)) - target).mean()
            for a in angles
        ]
        assert 15 <= abs(angles[int(np.argmin(errors))]) <= 50


def test_builtin_noisy_and_colored_keep_the_digit_brighter_than_the_ground():
    clean = _target_grey("train", 16)
    stroke, ground = clean > 200, clean < 20
    for name in ("digits-noisy", "digits-colored"):
        x, _ = datasets.load_builtin(name, "train", image_size=16)
        x = x.astype("float32")
        for image, s, g in zip(x[:50], stroke[:50], ground[:50]):
            if s.any() and g.any():
                # No polarity flip, on every channel (unlike digits-m).
                assert np.all(image[s].mean(0) > image[g].mean(0)), name
    noisy, _ = datasets.load_builtin("digits-noisy", "train", image_size=16)
    residual = noisy[ground].astype("float32") - 64.0
    assert 30 < residual.std() < 45  # Gaussian noise of std 40, clipped at 0
    colored, _ = datasets.load_builtin("digits-colored", "train", image_size=16)
    ground_colours = np.array([image[g].mean(0) for image, g in zip(colored, ground)])
    # Ground colours: uniform in [0, 100] per channel (+ a faint digit edge).
    assert ground_colours.max() <= 113 and ground_colours.std(0).min() > 20


def _best_angle(reference, image):
    """The rotation of `reference` (degrees, -60..60) that best matches `image`."""
    from PIL import Image

    angles = np.arange(-60, 61, 5)
    errors = [
        np.abs(np.asarray(Image.fromarray(reference, mode="F").rotate(a, Image.BILINEAR)) - image).mean()
        for a in angles
    ]
    return angles[int(np.argmin(errors))]


def test_builtin_combined_is_rotated_coloured_and_noisy_at_once():
    clean = _target_grey("train", 32)
    x, _ = datasets.load_builtin("digits-combined", "train", image_size=32)
    x = x.astype("float32")
    # Colour: the three channels differ (unlike the grey source).
    assert np.mean(np.abs(x[..., 0] - x[..., 2])) > 10
    # Rotation: the ink, rescaled per image to 0..1, matches the clean digit
    # turned by 20-45 degrees.
    for image, reference in zip(x[:20], clean[:20]):
        ink = image.mean(-1)
        ink = (ink - ink.min()) / (ink.max() - ink.min()) * 255
        assert 15 <= abs(_best_angle(reference, ink)) <= 50
    # Noise: pixel residuals around the (rotated, coloured, blurred) image
    # have the std the shift adds (40), measured against a clean rebuild.
    from keras_transfer.datasets import builtin

    rng = np.random.RandomState([0, 0, 4])
    rotated = builtin._rotated(clean, rng)[..., 0]
    noiseless = builtin._blur(builtin._colored(rotated, rng))
    inside = (noiseless > 60) & (noiseless < 195)  # away from clipping at 0 and 255
    assert 38 < (x - noiseless)[inside].std() < 42
    # No polarity flip: the rotated stroke is brighter than the ground.
    stroke, ground = rotated > 200, rotated < 20
    for image, s, g in zip(noiseless[:50], stroke[:50], ground[:50]):
        if s.any() and g.any():
            assert np.all(image[s].mean(0) > image[g].mean(0))


def test_builtin_sensor_has_noise_std_80_on_low_contrast():
    clean = _target_grey("train", 16)
    x, _ = datasets.load_builtin("digits-sensor", "train", image_size=16)
    ground = clean < 1
    residual = x[ground].astype("float32") - 96.0  # ground level
    # Gaussian noise of std 80 around 96, then clipped to 0..255: compare
    # with the same clipping applied to exact N(96, 80) draws.
    clipped = np.clip(np.rint(96 + np.random.default_rng(0).normal(0, 80, 200_000)), 0, 255) - 96
    np.testing.assert_allclose(residual.std(), clipped.std(), rtol=0.03)
    np.testing.assert_allclose(residual.mean(), clipped.mean(), atol=2.0)
    # The digit is still there on average (40 % contrast, no flip), far below the noise.
    stroke = clean > 200
    assert 60 < x[stroke].mean() - x[ground].mean() < 110


def test_list_builtins():
    assert datasets.list_builtins() == sorted(["digits", *TARGETS])


def test_builtin_bad_arguments_raise_with_suggestions():
    with pytest.raises(ValueError, match="Did you mean 'digits-m'"):
        datasets.load_builtin("digit-m", "train")
    with pytest.raises(ValueError, match=r"split='validation'"):
        datasets.load_builtin("digits", "validation")
    with pytest.raises(ValueError, match="image_size"):
        datasets.load_builtin("digits", "train", image_size=4)


def _first_batch(dataset):
    x, y = next(iter(dataset))
    return x.numpy(), y.numpy()


def test_load_builtin_batches_raw_pixels_in_stored_order_without_augmentation():
    dataset, info = datasets.load(
        "digits", "test", image_size=16, batch_size=8, augment=False, with_info=True
    )
    x, y = _first_batch(dataset)
    expected_x, expected_y = datasets.load_builtin("digits", "test", image_size=16)
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, expected_x[:8].astype("float32"))
    np.testing.assert_array_equal(y, expected_y[:8])
    assert sum(int(b[1].shape[0]) for b in dataset) == len(expected_y) == info.num_examples
    assert info.image_shape == (16, 16, 3) and info.num_classes == 10


def test_load_train_defaults_shuffle_and_augment_deterministically_by_seed():
    plain_x, _ = _first_batch(datasets.load("digits", "train", image_size=16, augment=False, shuffle=False))
    a_x, a_y = _first_batch(datasets.load("digits", "train", image_size=16, seed=3))
    b_x, b_y = _first_batch(datasets.load("digits", "train", image_size=16, seed=3))
    c_x, c_y = _first_batch(datasets.load("digits", "train", image_size=16, seed=4))
    np.testing.assert_array_equal(a_y, b_y)
    np.testing.assert_allclose(a_x, b_x)
    assert not np.array_equal(a_y, c_y)
    source_x, source_y = datasets.load_builtin("digits", "train", image_size=16)
    # Shuffled: not the stored order; augmented: not the stored pixels.
    assert not np.array_equal(a_y, source_y[:32])
    assert not any(np.array_equal(image, stored) for image in a_x for stored in source_x)
    assert plain_x.shape == a_x.shape


def test_default_augmentation_flips_only_where_mirroring_keeps_meaning(monkeypatch):
    import tensorflow as tf

    from keras_transfer.datasets import epochs
    from keras_transfer.datasets import pipeline

    flips = []
    real = pipeline.keyed_passes

    def spy(*args, **kwargs):
        flips.append(kwargs["flip"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "keyed_passes", spy)
    datasets.load("digits-m", "train", image_size=8)
    datasets.load((np.zeros((4, 8, 8, 3), "uint8"), np.arange(4)), "train")
    assert flips == [False, True]
    # With rotation and shift off, the augmentation only mirrors some images.
    monkeypatch.setattr(epochs, "_ROTATION", 0.0)
    monkeypatch.setattr(epochs, "_SHIFT", 0.0)
    images = np.random.uniform(0, 255, (16, 5, 5, 3)).astype("float32")
    key = tf.constant([3, 4], "int64")
    mirrored = epochs._augment(tf.constant(images), key, flip=True).numpy()
    same = [np.allclose(a, b, atol=1e-4) for a, b in zip(mirrored, images)]
    flipped = [np.allclose(a, b[:, ::-1], atol=1e-4) for a, b in zip(mirrored, images)]
    assert all(s or f for s, f in zip(same, flipped)) and any(same) and any(flipped)
    unflipped = epochs._augment(tf.constant(images), key, flip=False).numpy()
    np.testing.assert_allclose(unflipped, images, atol=1e-4)


def test_each_pass_is_drawn_from_seed_and_pass_number():
    data = datasets.load("digits", "train", image_size=8, seed=3)
    first, second = (_first_batch(data) for _ in range(2))
    assert not np.array_equal(first[1], second[1])
    sync = datasets.EpochSync(data)
    sync.on_epoch_begin(1)
    np.testing.assert_array_equal(_first_batch(data)[0], second[0])
    sync.on_epoch_begin(0)
    np.testing.assert_array_equal(_first_batch(data)[0], first[0])
    fresh = datasets.load("digits", "train", image_size=8, seed=3)
    np.testing.assert_array_equal(_first_batch(fresh)[0], first[0])
    assert int(data.cardinality()) == int(np.ceil(len(datasets.load_builtin("digits", "train")[1]) / 32))


def test_epoch_sync_sets_the_epoch_of_paired_arrays():
    source = (np.arange(40, dtype="float32")[:, None], np.arange(40) % 3)
    target = np.arange(100, 124, dtype="float32")[:, None]
    epochs = datasets.paired_dataset(source, target, batch_size=8, seed=5)
    first = epochs[0][0]
    epochs.on_epoch_end()
    second = epochs[0][0]
    assert not np.array_equal(first, second)
    resumed = datasets.paired_dataset(source, target, batch_size=8, seed=5)
    datasets.EpochSync(resumed).on_epoch_begin(1)
    np.testing.assert_array_equal(resumed[0][0], second)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("interrupted")


def test_a_fit_resumed_by_backup_and_restore_sees_the_same_data(tmp_path):
    """`EpochSync` + `BackupAndRestore`: a resumed run ends where an uninterrupted one does."""

    def run(*extra):
        keras.utils.set_random_seed(0)
        data = datasets.load("digits", "train", image_size=8, batch_size=64, seed=1)
        model = keras.Sequential(
            [keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(), keras.layers.Dense(10)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(data, epochs=4, verbose=0, callbacks=[*extra, datasets.EpochSync(data)])
        return model.get_weights()

    uninterrupted = run()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        run(backup, _Interrupt())
    resumed = run(keras.callbacks.BackupAndRestore(str(tmp_path / "backup")))
    for a, b in zip(uninterrupted, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_load_applies_preprocessing_and_custom_augmentation():
    dataset = datasets.load(
        "digits",
        "train",
        image_size=16,
        augment=keras.layers.RandomContrast(0.5, seed=1),
        preprocessing=keras.layers.Rescaling(1.0 / 255),
    )
    x, _ = _first_batch(dataset)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5


def test_load_numpy_arrays_grayscale_to_rgb_and_non_square_resize():
    x = np.random.randint(0, 256, size=(10, 12, 12), dtype="uint8")
    y = np.arange(10) % 5
    dataset, info = datasets.load((x, y), "test", image_size=(8, 6), channels=3, batch_size=4, with_info=True)
    batch_x, batch_y = _first_batch(dataset)
    assert batch_x.shape == (4, 8, 6, 3)
    np.testing.assert_array_equal(batch_x[..., 0], batch_x[..., 2])
    np.testing.assert_array_equal(batch_y, y[:4])
    assert info.num_classes == 5 and info.image_shape == (8, 6, 3)


def test_load_tfds_mock_data_through_the_real_tfds_path():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):
        dataset, info = datasets.load(
            "tfds:mnist", "train", image_size=16, channels=3, batch_size=4, with_info=True
        )
        shapes = [tuple(x.shape) for x, _ in dataset]
        labels = np.concatenate([y.numpy() for _, y in dataset])
        assert shapes == [(4, 16, 16, 3), (4, 16, 16, 3), (2, 16, 16, 3)]
        assert info.class_names[:2] == ("0", "1") and info.image_shape == (16, 16, 3)
        assert labels.min() >= 0 and labels.max() < 10
        with pytest.raises(ValueError, match="varying size"):
            datasets.load("tfds:tf_flowers", "train")
        flowers = datasets.load("tfds:tf_flowers", "train", image_size=12, batch_size=5)
        assert [tuple(x.shape) for x, _ in flowers] == [(5, 12, 12, 3)] * 2
        mnist_labels = datasets.labels("tfds:mnist", "train")
        assert mnist_labels.shape == (10,)
        picked = datasets.load(
            "tfds:mnist", "train", image_size=8, batch_size=10, indices=[1, 4], shuffle=False
        )
        np.testing.assert_array_equal(_first_batch(picked)[1], mnist_labels[[1, 4]])
        with pytest.raises(ValueError, match="has 10 classes but the task expects num_classes=5"):
            datasets.load("tfds:cifar10", "train", num_classes=5)
        with pytest.raises(ValueError, match="split string"):
            datasets.describe("tfds:cifar10", None)


def _write_image_folder(root):
    from PIL import Image

    for split, per_class in (("train", 3), ("test", 1)):
        for label, colour in (("cat", 30), ("dog", 220)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.full((10 + i, 14, 3), colour, dtype="uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")


def test_load_folder_of_pngs(tmp_path):
    _write_image_folder(tmp_path)
    spec = f"folder:{tmp_path}"
    dataset, info = datasets.load(spec, "train", image_size=8, batch_size=6, augment=False, shuffle=False, with_info=True)
    x, y = _first_batch(dataset)
    assert info.class_names == ("cat", "dog") and info.num_examples == 6
    assert x.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(x[y == 0], 30.0, atol=0.5)
    np.testing.assert_allclose(x[y == 1], 220.0, atol=0.5)
    assert datasets.describe(spec, "test").num_examples == 2
    with pytest.raises(ValueError, match="no sub-folder 'validation'"):
        datasets.load(spec, "validation", image_size=8)
    with pytest.raises(ValueError, match="varying size"):
        datasets.load(spec, "train")
    whole = datasets.describe(f"folder:{tmp_path / 'train'}", None)
    assert whole.num_classes == 2


def test_labels_and_indices_select_examples_by_stored_position(tmp_path):
    x, y = datasets.load_builtin("digits", "train", image_size=16)
    labels = datasets.labels("digits", "train")
    np.testing.assert_array_equal(labels, y)
    chosen = np.flatnonzero(labels == 3)[:5]
    subset, info = datasets.load(
        "digits", "train", image_size=16, batch_size=64, indices=chosen[::-1], with_info=True
    )
    _, batch_y = _first_batch(subset)
    assert info.num_examples == 5 and int(subset.cardinality()) == 1
    np.testing.assert_array_equal(batch_y, [3] * 5)
    plain = datasets.load(
        "digits", "train", image_size=16, batch_size=64, indices=chosen, shuffle=False, augment=False
    )
    np.testing.assert_allclose(_first_batch(plain)[0], x[chosen], atol=1e-4)

    _write_image_folder(tmp_path)
    spec = f"folder:{tmp_path}"
    np.testing.assert_array_equal(datasets.labels(spec, "train"), [0, 0, 0, 1, 1, 1])
    dogs = datasets.load(spec, "train", image_size=8, batch_size=6, indices=[3, 5], augment=False)
    np.testing.assert_allclose(_first_batch(dogs)[0], 220.0, atol=0.5)

    for bad in ([], [0, 0], [-1], [719], np.zeros((2, 2), int), [0.5]):
        with pytest.raises(ValueError, match="Invalid value received for argument `indices`"):
            datasets.load("digits", "train", indices=bad)


def test_dataset_info_check_names_both_sides():
    info = datasets.describe("digits")
    info.check(num_classes=10, input_shape=(224, 224, 3))
    info.check(input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match=r"'digits' has 10 classes.*num_classes=7"):
        info.check(num_classes=7)
    with pytest.raises(ValueError, match=r"\(32, 32, 3\).*input_shape=\(32, 32, 4\)"):
        info.check(input_shape=(32, 32, 4))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"spec": "digit"}, "Did you mean 'digits'"),
        ({"spec": 3}, "spec of type int"),
        ({"spec": (np.zeros((4, 8)), np.zeros(4, "int64"))}, "x.shape=\\(4, 8\\)"),
        ({"spec": (np.zeros((4, 8, 8)), np.zeros(4))}, "y.dtype=float64"),
        ({"spec": "folder:/nonexistent/x"}, "no such folder"),
        ({"spec": "digits", "channels": 2}, "channels=2"),
        ({"spec": "digits", "image_size": (8, 8, 3)}, "image_size=\\(8, 8, 3\\)"),
        ({"spec": "digits", "augment": "yes"}, "augment='yes'"),
        ({"spec": "digits", "split": "validation"}, "split='validation'"),
    ],
)
def test_load_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.load(**kwargs)


def test_fit_on_loaded_dataset_reduces_loss():
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(datasets.load("digits", "train", image_size=16, augment=False), epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_builtin_names_the_missing_install(monkeypatch):
    import sys

    from keras_transfer.datasets import builtin

    builtin._digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    try:
        with pytest.raises(ImportError, match=r"need scikit-learn and pillow \(missing: sklearn.*keras-transfer\[datasets\]"):
            builtin.load_builtin("digits", "train")
    finally:
        builtin._digits.cache_clear()
