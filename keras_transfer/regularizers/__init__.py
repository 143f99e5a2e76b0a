"""keras_transfer.regularizers."""
