"""keras_transfer.layers."""

from keras_transfer.layers.gradient_reversal import GradientReversal
