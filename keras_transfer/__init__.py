"""keras-transfer: transfer learning for Keras 3 on TensorFlow, JAX and PyTorch."""

__version__ = "0.1.0"
