"""keras_transfer.metrics: F1 for integer class labels."""

from keras_transfer.metrics.sparse_f1_score import SparseF1Score
