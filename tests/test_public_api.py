import ast
import importlib
import inspect
import pathlib
import re
import subprocess
import sys
import types

import keras
import pytest

import keras_transfer

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOTTED = re.compile(r"\bkeras_transfer(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@pytest.mark.parametrize("name", keras_transfer.__all__)
def test_every_public_name_resolves_to_what_the_table_says(name):
    module_name, attribute = keras_transfer._API[name]
    value = getattr(keras_transfer, name)
    if attribute is None:
        assert isinstance(value, types.ModuleType)
        assert value.__name__ == module_name
    else:
        assert value is getattr(importlib.import_module(module_name), attribute)
        assert value.__name__ == attribute


def test_top_level_export_stays_the_function_after_importing_its_module():
    """`keras_transfer.export` is the function, whatever was imported first."""
    code = (
        "from keras_transfer.exporting import ExportResult\n"
        "import keras_transfer\n"
        "assert callable(keras_transfer.export), keras_transfer.export\n"
        "assert keras_transfer.export.__name__ == 'export'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


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


def _docstrings(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(
            node,
            (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
        ):
            text = ast.get_docstring(node)
            if text:
                yield text


def _documented_names():
    """Every `keras_transfer.x.y` written in README, docs/ and docstrings."""
    found = {}
    texts = [(p, p.read_text()) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]]
    for folder in (ROOT / "keras_transfer", ROOT / "zoo", ROOT / "examples"):
        for path in sorted(folder.rglob("*.py")):
            texts += [(path, text) for text in _docstrings(path)]
    for path, text in texts:
        for name in DOTTED.findall(text):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


DOCUMENTED = _documented_names()


def test_the_docs_name_many_things():
    assert len(DOCUMENTED) > 40


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="name resolution is backend-independent; runs on tensorflow and jax",
)
@pytest.mark.parametrize("dotted", sorted(DOCUMENTED))
def test_every_documented_name_resolves_after_import_keras_transfer(dotted):
    """`keras_transfer.a.b` as written in docs works after `import keras_transfer`."""
    value = keras_transfer
    for part in dotted.split(".")[1:]:
        assert hasattr(value, part), (
            f"{dotted} (written in {DOCUMENTED[dotted]}) does not resolve: "
            f"{getattr(value, '__name__', value)!r} has no attribute {part!r}"
        )
        value = getattr(value, part)
    constant = dotted.rsplit(".", 1)[-1].isupper()  # e.g. adaptation.CANDIDATES
    if not isinstance(value, types.ModuleType) and not constant:
        # Docs name modules, classes, functions and UPPER_CASE constants;
        # anything else (an instance) is a name that changed meaning.
        assert inspect.isclass(value) or callable(value), (
            f"{dotted} (written in {DOCUMENTED[dotted]}) is a "
            f"{type(value).__name__}, not a module, class or function"
        )
