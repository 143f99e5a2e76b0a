"""The image preprocessing of `keras.applications` families, as a layer."""

import keras

_MODES = ("caffe", "tf", "torch", "identity")
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="keras_transfer")
class ImageNetPreprocessing(keras.layers.Layer):
    """Maps raw RGB images (0..255) to what an ImageNet backbone expects.

    The same arithmetic as `keras.applications.<family>.preprocess_input`,
    written with `keras.ops` so that it runs inside a model on every backend
    and is saved with it: an exported model then takes raw images.

    Modes:

    ```python
    "caffe":    x[..., ::-1] - [103.939, 116.779, 123.68]        # RGB->BGR
    "tf":       x / 127.5 - 1
    "torch":    (x / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    "identity": x          # the backbone rescales its inputs itself
    ```

    Args:
        mode: String, one of `"caffe"`, `"tf"`, `"torch"` or `"identity"`.
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        **kwargs: Base layer keyword arguments. The layer computes in
            `float32` unless `dtype` is given, so that mean subtraction stays
            exact under mixed precision.

    Call arguments:
        inputs: A batch of RGB images, of any integer or float dtype, with
            values in `[0, 255]`.

    Example:

    >>> layer = keras_transfer.preprocessing.ImageNetPreprocessing("tf")
    >>> layer(np.full((1, 2, 2, 3), 255, "uint8"))[0, 0, 0]
    [1., 1., 1.]
    """

    def __init__(self, mode, data_format=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ValueError(
                f"Invalid value received for argument `mode`. Expected one "
                f"of {_MODES}. Received: mode={mode!r}"
            )
        self.mode = mode
        self.data_format = data_format or keras.config.image_data_format()
        self.supports_masking = False

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "identity":
            return x
        if self.mode == "tf":
            return x / 127.5 - 1.0
        channel_axis = -1 if self.data_format == "channels_last" else -3
        if self.mode == "caffe":
            x = keras.ops.flip(x, axis=channel_axis)
            return x - self._per_channel(_CAFFE_BGR_MEAN, channel_axis)
        mean = self._per_channel(_TORCH_MEAN, channel_axis)
        std = self._per_channel(_TORCH_STD, channel_axis)
        return (x / 255.0 - mean) / std

    def _per_channel(self, values, channel_axis):
        shape = (3,) if channel_axis == -1 else (3, 1, 1)
        return keras.ops.reshape(
            keras.ops.convert_to_tensor(values, self.compute_dtype), shape
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "mode": self.mode,
            "data_format": self.data_format,
        }
