"""keras-transfer: transfer learning for Keras 3 on TensorFlow, JAX and PyTorch.

The public API is loaded lazily (PEP 562), so importing the package does not
import Keras: `keras-transfer --backend jax ...` must set `KERAS_BACKEND`
before Keras picks its backend. Importing it still makes every serializable
keras-transfer class known to Keras (now, or as soon as Keras is imported),
so `keras.saving.load_model` works after a plain `import keras_transfer`.
"""

import importlib

from keras_transfer import _registration

__version__ = "0.1.0"

# Public sub-modules, each reachable as `keras_transfer.<name>` (lazily).
_MODULES = (
    "adaptation",
    "backbones",
    "callbacks",
    "cli",
    "datasets",
    "exporting",
    "features",
    "freezing",
    "heads",
    "layers",
    "losses",
    "lr_finder",
    "metrics",
    "models",
    "optimizers",
    "preprocessing",
    "ranking",
    "regularizers",
    "schedules",
    "testing",
    "zoo",
)

_API = {
    # name: (module, attribute or None for the module itself)
    **{name: (f"keras_transfer.{name}", None) for name in _MODULES},
    "freeze": ("keras_transfer.freezing", "freeze"),
    "unfreeze": ("keras_transfer.freezing", "unfreeze"),
    "select_layers": ("keras_transfer.freezing", "select_layers"),
    "load_backbone": ("keras_transfer.backbones", "load_backbone"),
    "list_backbones": ("keras_transfer.backbones", "list_backbones"),
    "Backbone": ("keras_transfer.backbones", "Backbone"),
    "BackboneInfo": ("keras_transfer.backbones", "BackboneInfo"),
    "ImageNetPreprocessing": (
        "keras_transfer.preprocessing",
        "ImageNetPreprocessing",
    ),
    "ClassificationHead": ("keras_transfer.heads", "ClassificationHead"),
    "build_classifier": ("keras_transfer.models", "build_classifier"),
    "fit_staged": ("keras_transfer.callbacks", "fit_staged"),
    "lr_find": ("keras_transfer.lr_finder", "lr_find"),
    "LRFinderResult": ("keras_transfer.lr_finder", "LRFinderResult"),
    "export": ("keras_transfer.exporting", "export"),
    "rank": ("keras_transfer.ranking", "rank"),
    "ExportResult": ("keras_transfer.exporting", "ExportResult"),
}

__all__ = sorted(_API)

_registration.install()


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'keras_transfer' has no attribute {name!r}")
    module_name, attribute = _API[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
