"""The keras-transfer model zoo: task names mapped to ready-built transfer models."""
