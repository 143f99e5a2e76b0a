"""Test helpers for keras-transfer and for code built on it."""

from keras_transfer.testing.test_case import TestCase

__all__ = ["TestCase"]
