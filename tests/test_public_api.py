import subprocess
import sys

import pytest

import keras_transfer


@pytest.mark.parametrize("name", keras_transfer.__all__)
def test_every_public_name_resolves(name):
    assert getattr(keras_transfer, name) is not None


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        keras_transfer.no_such_thing


def test_importing_the_package_does_not_import_keras():
    """The CLI sets KERAS_BACKEND after importing keras_transfer."""
    code = "import sys, keras_transfer; print('keras' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
