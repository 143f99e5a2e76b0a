"""The apps layer: the `keras-transfer` command line, the demo and run reports.

Imports the zoo and the core; nothing imports it back. Importing it does not
import Keras (the CLI sets `KERAS_BACKEND` from `--backend` first).
"""

from keras_transfer.cli.main import main
