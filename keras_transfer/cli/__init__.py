"""The apps layer: the `keras-transfer` command line, the demo and run reports.

Imports the zoo and the core; nothing imports it back. Importing it does not
import Keras (the CLI sets `KERAS_BACKEND` from `--backend` first).
"""

from keras_transfer.cli.main import main


def __getattr__(name):
    """`keras_transfer.cli.<module>` (e.g. `reports`) after a plain `import keras_transfer`."""
    import importlib

    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
