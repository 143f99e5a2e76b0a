"""Offline digit datasets made from real data shipped with scikit-learn.

Two domains for domain-adaptation experiments that run without a network:

- `"digits"` (source): scikit-learn's 8x8 handwritten digits (UCI optdigits,
  1797 images, grey levels 0..16), upscaled to `image_size` RGB uint8.
- `"digits-m"` (target): built the way MNIST-M was built from MNIST (Ganin et
  al. 2016): each digit is blended with a random colour patch cropped from a
  photograph as `|patch - digit|` per channel. The photographs are the two
  sample images scikit-learn ships (`china.jpg`, `flower.jpg`).

The two domains use disjoint digit images, and each has its own stratified
train/test split (40% / 10% / 40% / 10% of every class for source-train,
source-test, target-train, target-test). The split is fixed, the same for
every `seed`, so no image ever crosses domains or splits. Train and test
patches are independent random crops of the same photographs (separate random
streams), so the target train and test splits are one distribution, as in
MNIST-M.
"""

import difflib
import functools

import numpy as np

_NAMES = (
    "digits",
    "digits-m",
    "digits-rotated",
    "digits-noisy",
    "digits-colored",
    "digits-combined",
    "digits-sensor",
)
# Extra seed words per target domain, so the shifts never share random draws
# (digits-m keeps the stream it had before the other shifts existed).
_STREAMS = {
    "digits-m": (),
    "digits-rotated": (1,),
    "digits-noisy": (2,),
    "digits-colored": (3,),
    "digits-combined": (4,),
    "digits-sensor": (5,),
}
_SPLITS = ("train", "test")
_SPLIT_SEED = 20160101  # Fixed: the domain and train/test split never depend on `seed`.


def list_builtins():
    """Return the names of the offline built-in datasets.

    Returns:
        Sorted list of names accepted by `load_builtin` and
        `keras_transfer.datasets.load`.
    """
    return sorted(_NAMES)


def load_builtin(name, split, image_size=32, seed=0):
    """Load an offline built-in dataset as numpy arrays.

    Args:
        name: String. `"digits"` (source domain), or a target domain:
            `"digits-m"` (digits blended with colour photo patches, as
            MNIST-M), `"digits-rotated"`, `"digits-noisy"`,
            `"digits-colored"`, `"digits-combined"` (rotated, coloured and
            noisy at once) or `"digits-sensor"` (noise std 80); see
            `docs/datasets.md`.
        split: String. `"train"` or `"test"`.
        image_size: Integer >= 8. Height and width of the returned images.
            Defaults to `32`.
        seed: Integer. Picks the random part of a target domain (patches,
            angles, noise, colours). The domain and train/test split do not
            depend on it. Defaults to `0`.

    Returns:
        Tuple `(x, y)`: `x` uint8 of shape `(N, image_size, image_size, 3)`,
        `y` int64 of shape `(N,)` with labels in `0..9`.

    Example:

    >>> x, y = keras_transfer.datasets.load_builtin("digits-m", "train")
    >>> x.shape, x.dtype, y[:5]
    ((719, 32, 32, 3), dtype('uint8'), array([1, 3, 4, 6, 7]))

    Reference:
        - [Ganin et al., 2016](https://arxiv.org/abs/1505.07818) (MNIST-M)
    """
    if name not in _NAMES:
        close = difflib.get_close_matches(str(name), _NAMES, n=2, cutoff=0.3)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Invalid value received for argument `name`: unknown built-in "
            f"dataset.{hint} Available: {list_builtins()}. Received: name={name!r}"
        )
    if split not in _SPLITS:
        raise ValueError(
            "Invalid value received for argument `split`. Expected one of "
            f"{list(_SPLITS)}. Received: split={split!r}"
        )
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(
            "Invalid value received for argument `image_size`. Expected an "
            f"integer >= 8. Received: image_size={image_size!r}"
        )
    digits = _digits()
    part = (0 if name == "digits" else 2) + (0 if split == "train" else 1)
    index = _split_indices(digits.target)[part]
    grey = _upscale(digits.images[index] * (255.0 / 16.0), image_size)
    if name == "digits":
        rgb = np.repeat(grey[..., None], 3, axis=-1)
    else:
        rng = np.random.RandomState(
            [seed, 0 if split == "train" else 1, *_STREAMS[name]]
        )
        rgb = _SHIFTS[name](grey, rng)
    x = np.clip(np.rint(rgb), 0, 255).astype("uint8")
    return x, digits.target[index].astype("int64")


def _require(module):
    """Import `module`, or say which install the built-ins need."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"The offline built-in datasets need scikit-learn and pillow "
            f"(missing: {error.name}). Install them with "
            f"`pip install keras-transfer[datasets]` or "
            f"`pip install scikit-learn pillow`."
        ) from error


@functools.lru_cache(maxsize=1)
def _digits():
    return _require("sklearn.datasets").load_digits()


@functools.lru_cache(maxsize=1)
def _photos():
    return tuple(_require("sklearn.datasets").load_sample_images().images)


def _split_indices(labels):
    """The four disjoint parts, each stratified by class, deterministically.

    scikit-learn's `train_test_split(stratify=)` halves the digits into the
    source and target domains, then splits each into train and test.
    """
    train_test_split = _require("sklearn.model_selection").train_test_split
    positions = np.arange(len(labels))
    source, target = train_test_split(
        positions, test_size=0.5, stratify=labels, random_state=_SPLIT_SEED
    )
    parts = []
    for domain in (source, target):
        train, test = train_test_split(
            domain, test_size=0.2, stratify=labels[domain], random_state=_SPLIT_SEED
        )
        parts += [train, test]
    return [np.sort(part) for part in parts]


def _upscale(images, size):
    """Bilinear resize of float images `(N, h, w)` to `(N, size, size)`."""
    Image = _require("PIL.Image")

    return np.stack(
        [
            np.asarray(
                Image.fromarray(image.astype("float32"), mode="F").resize(
                    (size, size), Image.BILINEAR
                )
            )
            for image in images
        ]
    )


def _mnist_m(grey, rng):
    """`|patch - digit|` per channel with random photo patches (MNIST-M)."""
    patches = _photo_patches(len(grey), grey.shape[1], rng)
    return np.abs(patches - grey[..., None])


def _rotated(grey, rng):
    """Each digit rotated by 20 to 45 degrees, clockwise or not."""
    Image = _require("PIL.Image")

    angles = rng.uniform(20.0, 45.0, len(grey)) * rng.choice([-1.0, 1.0], len(grey))
    rotated = np.stack(
        [
            np.asarray(Image.fromarray(image, mode="F").rotate(angle, Image.BILINEAR))
            for image, angle in zip(grey.astype("float32"), angles)
        ]
    )
    return np.repeat(rotated[..., None], 3, axis=-1)


def _blur(images):
    """Gaussian blur of `(N, h, w[, c])` images, sigma = size / 32 pixels."""
    ndimage = _require("scipy.ndimage")  # scipy comes with scikit-learn

    sigma = images.shape[1] / 32.0
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0)[: images.ndim])


def _sensor(grey, rng, ground, contrast, noise_std):
    """Lower contrast on a grey ground, blurred, plus Gaussian pixel noise."""
    rgb = np.repeat((ground + contrast * _blur(grey))[..., None], 3, axis=-1)
    return rgb + rng.normal(0.0, noise_std, rgb.shape)


def _noisy(grey, rng):
    """Half contrast on a grey (64) ground, blurred, plus Gaussian noise (std 40)."""
    return _sensor(grey, rng, ground=64.0, contrast=0.5, noise_std=40.0)


def _sensor_80(grey, rng):
    """A poor sensor: 40 % contrast on a mid-grey (96) ground, blurred, noise std 80."""
    return _sensor(grey, rng, ground=96.0, contrast=0.4, noise_std=80.0)


def _colored(grey, rng):
    """A bright random-colour digit on a dark random-colour ground."""
    count = len(grey)
    ground = rng.uniform(0.0, 100.0, (count, 1, 1, 3))
    ink = rng.uniform(150.0, 255.0, (count, 1, 1, 3))
    alpha = grey[..., None] / 255.0
    return ground + alpha * (ink - ground)


def _combined(grey, rng):
    """Three shifts at once: rotated (20-45°), coloured, blurred + noise std 40."""
    rotated = _rotated(grey, rng)[..., 0]
    return _blur(_colored(rotated, rng)) + rng.normal(0.0, 40.0, rotated.shape + (3,))


_SHIFTS = {
    "digits-m": _mnist_m,
    "digits-rotated": _rotated,
    "digits-noisy": _noisy,
    "digits-colored": _colored,
    "digits-combined": _combined,
    "digits-sensor": _sensor_80,
}


def _photo_patches(count, size, rng):
    """Random `size` x `size` crops of sklearn's sample photographs, float32."""
    Image = _require("PIL.Image")

    photos = _photos()
    patches = np.empty((count, size, size, 3), "float32")
    for i in range(count):
        photo = photos[rng.randint(len(photos))]
        height, width = photo.shape[:2]
        crop = min(size, height, width)
        top = rng.randint(height - crop + 1)
        start = rng.randint(width - crop + 1)
        patch = photo[top : top + crop, start : start + crop]
        if crop != size:
            patch = np.asarray(Image.fromarray(patch).resize((size, size), Image.BILINEAR))
        patches[i] = patch
    return patches
