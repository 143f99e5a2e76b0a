import numpy as np
import pytest

from keras_transfer import datasets


@pytest.mark.parametrize("name", ["digits", "digits-m"])
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
    patches = builtin._photo_patches(len(index), 16, "train", seed=0)
    expected = np.rint(np.abs(patches - grey[..., None]))
    x, _ = datasets.load_builtin("digits-m", "train", image_size=16)
    np.testing.assert_array_equal(x, expected.astype("uint8"))
    # Colour: the channels differ, unlike the grey source domain.
    assert np.mean(np.abs(x[..., 0].astype(int) - x[..., 2])) > 5
    source, _ = datasets.load_builtin("digits", "train", image_size=16)
    np.testing.assert_array_equal(source[..., 0], source[..., 2])


def test_builtin_train_and_test_patches_come_from_different_columns():
    from keras_transfer.datasets import builtin

    train = builtin._photo_patches(50, 16, "train", seed=0)
    test = builtin._photo_patches(50, 16, "test", seed=0)
    assert not _fingerprints(train.astype("uint8")) & _fingerprints(test.astype("uint8"))


def test_list_builtins():
    assert datasets.list_builtins() == ["digits", "digits-m"]


def test_builtin_bad_arguments_raise_with_suggestions():
    with pytest.raises(ValueError, match="Did you mean 'digits-m'"):
        datasets.load_builtin("digit-m", "train")
    with pytest.raises(ValueError, match=r"split='validation'"):
        datasets.load_builtin("digits", "validation")
    with pytest.raises(ValueError, match="image_size"):
        datasets.load_builtin("digits", "train", image_size=4)
