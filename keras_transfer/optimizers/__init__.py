"""keras_transfer.optimizers."""

from keras_transfer.optimizers.layerwise_optimizer import LayerwiseOptimizer
from keras_transfer.optimizers.layerwise_optimizer import layer_decay_groups
