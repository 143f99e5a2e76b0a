"""Makes every serializable keras-transfer class loadable once Keras is imported.

A saved model names its custom classes by registered name
(`"keras_transfer>ClassificationHead"`), and `keras.saving.load_model` looks
each name up in Keras' registry (`keras.saving.get_custom_objects()`) without
importing anything: keras/src/saving/serialization_lib.py,
`_retrieve_class_or_fn`, imports a class's module by name only for `keras`,
`keras_hub`, `keras_cv` and `keras_nlp`. So every name must be in the
registry before loading starts, including `TextClassifier`, whose module
imports KerasHub (and KerasHub imports TensorFlow).

`import keras_transfer` must not import Keras (the CLI sets `KERAS_BACKEND`
after importing the package). `install()` fills the registry at once when
Keras is already imported, and otherwise puts a finder on `sys.meta_path`
that fills it right after the `keras` package finishes importing.

Filling it is cheap: each name gets a `_Loader` that imports the class's
module only when a saved object of that class is deserialized, so loading a
model that holds no text classifier never imports KerasHub or TensorFlow,
and nothing of ours is imported while `keras` itself is being imported.
Importing a module runs its `register_keras_serializable` decorators, which
replace the loaders with the real classes.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# Registered name -> module defining the class. A test checks that it lists
# every class registered with package="keras_transfer", and only those.
SERIALIZABLE = {
    "keras_transfer>AdaptationModel": "keras_transfer.adaptation.alignment",
    "keras_transfer>ClassificationHead": "keras_transfer.heads",
    "keras_transfer>CoralLoss": "keras_transfer.losses.coral",
    "keras_transfer>DANNDecay": "keras_transfer.schedules.dann_decay",
    "keras_transfer>DANNLambda": "keras_transfer.schedules.dann_lambda",
    "keras_transfer>EntropyLoss": "keras_transfer.losses.entropy",
    "keras_transfer>FixMatchLoss": "keras_transfer.losses.fixmatch",
    "keras_transfer>GradientReversal": "keras_transfer.layers.gradient_reversal",
    "keras_transfer>ImageNetPreprocessing": "keras_transfer.preprocessing",
    "keras_transfer>InverseSquareRootDecay": (
        "keras_transfer.schedules.inverse_square_root_decay"
    ),
    "keras_transfer>L2SP": "keras_transfer.regularizers.l2sp",
    "keras_transfer>LayerwiseOptimizer": (
        "keras_transfer.optimizers.layerwise_optimizer"
    ),
    "keras_transfer>LinearWarmup": "keras_transfer.schedules.linear_warmup",
    "keras_transfer>MCCLoss": "keras_transfer.losses.mcc",
    "keras_transfer>MMDLoss": "keras_transfer.losses.mmd",
    "keras_transfer>PixelDAModel": "keras_transfer.adaptation.generative",
    "keras_transfer>OneCycle": "keras_transfer.schedules.one_cycle",
    "keras_transfer>SparseCategoricalCrossentropy": (
        "keras_transfer.losses.sparse_categorical_crossentropy"
    ),
    "keras_transfer>SparseF1Score": "keras_transfer.metrics.sparse_f1_score",
    "keras_transfer>StepOffset": "keras_transfer.schedules.step_offset",
    "keras_transfer>TextClassifier": "keras_transfer.models.text_classifier",
    "keras_transfer>UniformNoise": "keras_transfer.adaptation.generative",
    "keras_transfer>coral_loss": "keras_transfer.losses.coral",
    "keras_transfer>entropy_loss": "keras_transfer.losses.entropy",
    "keras_transfer>fixmatch_loss": "keras_transfer.losses.fixmatch",
    "keras_transfer>mcc_loss": "keras_transfer.losses.mcc",
    "keras_transfer>mmd_loss": "keras_transfer.losses.mmd",
}


class _Loader:
    """Stands in for a registered class until a saved object needs it.

    `deserialize_keras_object` calls `from_config` on what the registry
    returns; this imports the class's module then and hands over.
    """

    def __init__(self, registered_name, module):
        self.registered_name = registered_name
        self.module = module

    def load(self):
        """Imports the module and returns the class or function registered."""
        import keras

        importlib.import_module(self.module)
        # The global registry itself: inside `load_model` the scope that
        # `get_registered_object` reads first still holds this loader.
        loaded = keras.saving.get_custom_objects().get(self.registered_name)
        if loaded is None or loaded is self:
            raise ImportError(
                f"{self.module} did not register {self.registered_name!r}; "
                "keras_transfer._registration.SERIALIZABLE is out of date."
            )
        return loaded

    def from_config(self, config):
        return self.load().from_config(config)

    def __call__(self, *args, **kwargs):
        # Registered functions (`coral_loss`) are called, not configured.
        return self.load()(*args, **kwargs)

    def __repr__(self):
        return f"<keras_transfer loader of {self.registered_name} from {self.module}>"


def register_all():
    """Puts a loader in Keras' registry for every name not registered yet."""
    import keras

    registry = keras.saving.get_custom_objects()
    for registered_name, module in SERIALIZABLE.items():
        registry.setdefault(registered_name, _Loader(registered_name, module))


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` with the other finders and registers once it has run."""

    # A spec can be found without being executed (TensorFlow's import probes
    # `importlib.util.find_spec("keras")`): this finder stays in place until
    # a spec it returned is executed.
    _finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            exec_module(module)
            register_all()

        spec.loader.exec_module = exec_then_register
        return spec


def install():
    """Registers now if Keras is imported, else right after it is."""
    if "keras" in sys.modules:
        register_all()
    elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKeras())
