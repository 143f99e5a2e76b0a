import keras
from keras import ops

from keras_transfer._validation import check_number


@keras.saving.register_keras_serializable(package="keras_transfer")
class GradientReversal(keras.layers.Layer):
    """Identity on the forward pass; multiplies the gradient by `-lambda`.

    Placed between a feature extractor and a domain discriminator, the
    discriminator learns to tell the domains apart while the features
    receive the reversed gradient and learn to make them indistinguishable
    (DANN).

    The reversal is written with `keras.ops` only, so it runs unchanged on
    TensorFlow, JAX and PyTorch, inside `jit`/`tf.function`, and under mixed
    precision:

    ```python
    z = -lambda_ * float32(x)
    y = stop_gradient(float32(x)) + (z - stop_gradient(z))  # == x exactly
    # dy/dx == -lambda_
    ```

    The reversal is computed in float32 and the input dtype is returned.

    `hp_lambda` can be a float or a schedule: a callable `fn(step) -> lambda`
    such as `keras_transfer.schedules.DANNLambda` (any Keras-serializable
    callable object works). The step is a non-trainable variable the layer
    owns and increments at every `call(training=True)`; the schedule is
    evaluated inside the compiled train step, so the ramp advances per batch
    on every backend (a callback assigning lambda per batch is lost on JAX).

    Args:
        hp_lambda: Float >= 0 or callable `fn(step)`. Strength of the
            reversed gradient. Defaults to `1.0`.

    Call arguments:
        inputs: A tensor of any shape.
        training: Python boolean. The step counter only advances when
            `True`.

    Example:

    ```python
    features = keras.Input((128,))
    reversed_ = keras_transfer.layers.GradientReversal(hp_lambda=0.5)(features)
    domain = keras.layers.Dense(1)(reversed_)
    ```

    Reference:
        - [Ganin & Lempitsky, 2015](https://arxiv.org/abs/1409.7495)
    """

    def __init__(self, hp_lambda=1.0, **kwargs):
        super().__init__(**kwargs)
        if not callable(hp_lambda):
            hp_lambda = float(check_number("hp_lambda", hp_lambda, minimum=0))
        self.hp_lambda = hp_lambda
        self.supports_masking = True
        self.step = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="step",
        )

    def current_lambda(self):
        """The lambda the next training step will use, as a float32 tensor."""
        if callable(self.hp_lambda):
            return ops.cast(self.hp_lambda(self.step), "float32")
        return ops.convert_to_tensor(self.hp_lambda, dtype="float32")

    def call(self, inputs, training=False):
        hp_lambda = self.current_lambda()
        if training:
            self.step.assign_add(ops.ones((), dtype="int32"))
        x = ops.cast(inputs, "float32")
        reversed_ = -hp_lambda * x
        outputs = ops.stop_gradient(x) + (
            reversed_ - ops.stop_gradient(reversed_)
        )
        return ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        hp_lambda = self.hp_lambda
        if callable(hp_lambda):
            hp_lambda = keras.saving.serialize_keras_object(hp_lambda)
        return {**super().get_config(), "hp_lambda": hp_lambda}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["hp_lambda"], dict):
            config["hp_lambda"] = keras.saving.deserialize_keras_object(
                config["hp_lambda"]
            )
        return cls(**config)
