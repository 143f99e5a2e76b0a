import ast
import importlib
import inspect
import json
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


# Resolved in a fresh process, after `import keras_transfer` and nothing else:
# in this pytest process earlier tests have imported submodules already, which
# would hide a name that a reader's fresh `import keras_transfer` cannot reach.
_RESOLVE = r"""
import inspect, json, sys, types
import keras_transfer

problems = []
for dotted, where in json.loads(sys.stdin.read()).items():
    value = keras_transfer
    for part in dotted.split(".")[1:]:
        if not hasattr(value, part):
            problems.append(
                f"{dotted} (written in {where}) does not resolve: "
                f"{getattr(value, '__name__', value)!r} has no attribute {part!r}"
            )
            break
        value = getattr(value, part)
    else:
        # Docs name modules, classes, functions and UPPER_CASE constants
        # (e.g. adaptation.CANDIDATES); anything else (an instance) is a name
        # that changed meaning.
        constant = dotted.rsplit(".", 1)[-1].isupper()
        if not (isinstance(value, types.ModuleType) or constant
                or inspect.isclass(value) or callable(value)):
            problems.append(
                f"{dotted} (written in {where}) is a {type(value).__name__}, "
                "not a module, class or function"
            )
print(json.dumps(problems))
"""


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="name resolution is backend-independent; runs on tensorflow and jax",
)
def test_every_documented_name_resolves_after_import_keras_transfer_in_a_fresh_process():
    """`keras_transfer.a.b` as written in docs works after `import keras_transfer`."""
    done = subprocess.run(
        [sys.executable, "-c", _RESOLVE], input=json.dumps(DOCUMENTED),
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    problems = json.loads(done.stdout.strip().splitlines()[-1])
    assert problems == [], "\n".join(problems)


def test_the_fresh_process_check_reports_a_name_that_does_not_resolve():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("checks the checker: once, on tensorflow")
    done = subprocess.run(
        [sys.executable, "-c", _RESOLVE],
        input=json.dumps({"keras_transfer.cli.no_such_module": "here",
                          "keras_transfer.freezing.freeze": "there"}),
        capture_output=True, text=True, timeout=600,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "keras_transfer.cli.no_such_module (written in here) does not resolve: "
        "'keras_transfer.cli' has no attribute 'no_such_module'"
    ]
