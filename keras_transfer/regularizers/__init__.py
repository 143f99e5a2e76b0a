"""keras_transfer.regularizers: L2-SP, a pull towards the pretrained weights."""

from keras_transfer.regularizers.l2sp import L2SP
from keras_transfer.regularizers.l2sp import apply_l2sp
from keras_transfer.regularizers.l2sp import remove_l2sp

__all__ = ["L2SP", "apply_l2sp", "remove_l2sp"]
