"""Text classifier on a KerasHub backbone, taking raw strings on any backend.

This module imports `keras_hub`; `keras_transfer.models.build_classifier`
imports it only when a text backbone is requested, and
`keras_transfer.models.TextClassifier` only when asked for.
"""

import keras
import keras_hub

from keras_transfer.backbones import text_features
from keras_transfer.models.compile import compile_args
from keras_transfer.models.compile import default_optimizer


@keras.saving.register_keras_serializable(package="keras_transfer")
class TextClassifier(keras_hub.models.Task):
    """KerasHub text backbone -> masked mean pooling -> `ClassificationHead`.

    A KerasHub `Task`: the preprocessor (tokenizer and packer) runs in the
    input pipeline of `fit`/`evaluate`/`predict`, so raw strings work on
    TensorFlow, JAX and PyTorch alike; the model itself takes token ids.
    Sentence features are the mean of the token features over real tokens
    (as in sentence-transformers). The backbone runs in inference mode
    (dropout off), like a frozen image backbone.

    Args:
        backbone: A `keras_hub.models.Backbone` with a `padding_mask` input
            and a `sequence_output` output (BERT-like encoders).
        head: A `ClassificationHead` with `pooling=None`.
        preprocessor: A `keras_hub.models.TextClassifierPreprocessor`, or
            `None` to feed token ids yourself.
        trainable_backbone: Boolean, used for the default learning rate of
            `compile()`. Defaults to `False`.
        compile: Boolean, compile with the "auto" defaults. Defaults to
            `True`.
        **kwargs: `keras.Model` keyword arguments (`name`).

    Example:

    Usually built by `keras_transfer.models.build_classifier` from a
    pretrained preset, e.g. `build_classifier("bert_tiny_en_uncased", 2)`
    (or a local preset directory). Here, a tiny untrained BERT:

    ```python
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film"]
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary), sequence_length=8
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2,
        hidden_dim=8, intermediate_dim=16, max_sequence_length=8,
    )
    model = keras_transfer.models.TextClassifier(
        backbone,
        keras_transfer.heads.ClassificationHead(2, pooling=None),
        preprocessor,
    )
    model.fit(np.array(["good film", "bad film"]), np.array([1, 0]))  # raw text
    ```
    """

    def __init__(
        self,
        backbone,
        head,
        preprocessor=None,
        trainable_backbone=False,
        compile=True,
        **kwargs,
    ):
        if head.pooling is not None:
            raise ValueError(
                "Invalid value received for argument `head`: a text head "
                "takes pooled sentence features. Expected pooling=None. "
                f"Received: pooling={head.pooling!r}"
            )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head = head
        self.trainable_backbone = trainable_backbone
        inputs = backbone.input
        outputs = head(text_features(backbone, pooling="avg")(inputs))
        super().__init__(
            inputs=inputs, outputs=outputs, compile=False, **kwargs
        )
        if compile:
            self.compile()

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs
    ):
        """Compiles with Adam, the head's loss and accuracy where "auto"."""
        defaults = compile_args(
            default_optimizer(self.trainable_backbone), self.head
        )
        given = {"optimizer": optimizer, "loss": loss, "metrics": metrics}
        super().compile(
            **{
                key: defaults[key] if value == "auto" else value
                for key, value in given.items()
            },
            **kwargs,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "head": keras.layers.serialize(self.head),
            "trainable_backbone": self.trainable_backbone,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("head"), dict):
            config["head"] = keras.layers.deserialize(config["head"])
        return super().from_config(config)
