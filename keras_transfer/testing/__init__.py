"""keras_transfer.testing."""
