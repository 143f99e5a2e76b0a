"""Offline stand-ins for the examples' `--smoke` mode; not part of what they teach.

`--smoke` runs each example end to end in seconds, without downloads: tiny
images, random initial weights, and TensorFlow Datasets replaced by
`tensorflow_datasets.testing.mock_data` with labels that cycle through the
classes (so a stratified validation split exists).
"""

import contextlib

import numpy as np


@contextlib.contextmanager
def mock_tfds(num_examples=48, num_classes=4, image_shape=(40, 40, 3)):
    """Within the block, every `tfds` dataset yields `num_examples` fake examples.

    Labels are `i % num_classes`; images are random uint8 of `image_shape`;
    datasets with a text feature (e.g. `imdb_reviews`) get short sentences
    that name their label, so a text model can learn them.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    words = ("great", "awful", "fine", "dull")

    def as_dataset(builder, *args, **kwargs):
        input_key, label_key = builder.info.supervised_keys
        labels = np.arange(num_examples) % num_classes
        if input_key == "text":
            inputs = np.array(
                [f"a {words[y % len(words)]} film, truly {words[y % len(words)]}" for y in labels]
            )
        else:
            rng = np.random.default_rng(0)
            inputs = rng.integers(0, 256, (num_examples, *image_shape), dtype="uint8")
        return tf.data.Dataset.from_tensor_slices({input_key: inputs, label_key: labels})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        yield


def tiny_resnet_preset(folder, image_size=32):
    """Save a random-weight two-stage KerasHub ResNet as a local preset in `folder`.

    It loads like any preset (`keras_transfer.backbones.load_backbone(folder,
    weights=None)`) and names its layers as KerasHub ResNets do (`conv1_*`,
    `pool1_*` stem, then `stack0_*`, `stack1_*`); returns `folder`.
    """
    import keras_hub

    keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 64],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(image_size, image_size, 3),
    ).save_to_preset(folder)
    converter = keras_hub.layers.ResNetImageConverter(
        image_size=(image_size, image_size), scale=1 / 255.0
    )
    keras_hub.models.ResNetImageClassifierPreprocessor(converter).save_to_preset(folder)
    return folder
