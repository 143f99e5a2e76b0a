"""A small convolutional feature extractor on raw images."""

import keras


def cnn_features(input_shape, filters=(8, 16), name="features"):
    """A small conv feature extractor on raw uint8 images: `(batch, filters[-1])`.

    `Rescaling(1/255)`, then per entry of `filters` a conv-BN-ReLU-maxpool
    block, then global average pooling. The demo pretrains it on digits; the
    zoo's `test/tiny_cnn` and the tests build it in milliseconds.

    Args:
        input_shape: Tuple `(height, width, channels)`.
        filters: Tuple of ints, the width of each conv block. Defaults to
            `(8, 16)`.
        name: String. Model name. Defaults to `"features"`.

    Returns:
        A `keras.Model` from raw images (0..255) to pooled features.

    Example:

    >>> features = keras_transfer.models.cnn_features((32, 32, 3), (8, 16))
    >>> features.output_shape
    (None, 16)
    """
    if not filters or any(
        isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters
    ):
        raise ValueError(
            "Invalid value received for argument `filters`. Expected a "
            f"non-empty tuple of positive ints. Received: filters={filters!r}"
        )
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for index, width in enumerate(filters):
        x = keras.layers.Conv2D(width, 3, padding="same", name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{index}")(x)
    outputs = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, outputs, name=name)
