"""keras_transfer.schedules."""
