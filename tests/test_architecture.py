"""The package's shape: import layers, Keras internals behind one module.

Backend-independent checks (file and import analysis) run once, on the
TensorFlow run; `check_assumptions` runs on every backend.
"""

import ast
import inspect
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import keras
import pytest

from keras_transfer import _keras_compat

ROOT = pathlib.Path(__file__).resolve().parents[1]
once = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; checked on the tensorflow run",
)


def _stage_installed_layout(tmp_path):
    """Copies the package as it is installed: `zoo/` becomes keras_transfer.zoo."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "keras_transfer", tmp_path / "keras_transfer", ignore=ignore)
    shutil.copytree(ROOT / "zoo", tmp_path / "keras_transfer" / "zoo", ignore=ignore)
    return tmp_path


def _lint_imports(folder):
    command = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", command, str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(folder)},
    )


@once
def test_import_contracts_hold_on_the_installed_layout(tmp_path):
    result = _lint_imports(_stage_installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout


@once
def test_import_contracts_fail_when_the_core_imports_the_zoo(tmp_path):
    folder = _stage_installed_layout(tmp_path)
    heads = folder / "keras_transfer" / "heads.py"
    heads.write_text(heads.read_text() + "\nfrom keras_transfer.zoo import registry\n")
    result = _lint_imports(folder)
    assert result.returncode != 0
    assert "keras_transfer.heads is not allowed to import keras_transfer.zoo" in (
        result.stdout
    )


@once
def test_import_contracts_fail_on_a_cycle(tmp_path):
    folder = _stage_installed_layout(tmp_path)
    freezing = folder / "keras_transfer" / "freezing.py"
    freezing.write_text(freezing.read_text() + "\nfrom keras_transfer import backbones\n")
    result = _lint_imports(folder)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


@once
def test_core_layer_names_every_core_module():
    """A new core module must join the layer contract, or it is unchecked."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    core = {name.strip() for name in layers[-1].split(":")}
    package = ROOT / "keras_transfer"
    modules = {
        f"keras_transfer.{path.stem if path.is_file() else path.name}"
        for path in package.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert core == modules - {"keras_transfer.cli"}


def _private_attribute_uses(path):
    """`(line, expression)` of every `x._name` read, write or call in a file."""
    tree = ast.parse(path.read_text())
    uses = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            uses.append((node.lineno, ast.unparse(node)))
    return uses


def _keras_private_names():
    """Underscore names Keras' own classes define or set on `self`."""
    names = set()
    for cls in (
        keras.Layer,
        keras.Model,
        keras.optimizers.Optimizer,
        keras.callbacks.Callback,
        keras.losses.Loss,
        keras.metrics.Metric,
        keras.optimizers.schedules.LearningRateSchedule,
        keras.regularizers.Regularizer,
    ):
        for base in cls.__mro__:
            if not base.__module__.startswith("keras"):
                continue
            names.update(n for n in vars(base) if n.startswith("_"))
            try:
                source = inspect.getsource(base)
            except (OSError, TypeError):
                continue
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                    names.add(node.attr)
    return {n for n in names if not n.startswith("__")}


@once
def test_no_private_keras_access_outside_the_compat_module():
    """Only `_keras_compat.py` reads, writes or replaces Keras' private names.

    Other modules may use underscore names of their own (module-private
    helpers, attributes of their own classes), never a name that Keras'
    classes define: `optimizer._learning_rate`, `layer._flatten_layers`, ...
    """
    keras_private = _keras_private_names()
    assert {"_learning_rate", "_flatten_layers", "_jax_state_synced"} <= (
        keras_private | {"_jax_state_synced"}
    )
    offenders = []
    for folder in (ROOT / "keras_transfer", ROOT / "zoo"):
        for path in sorted(folder.rglob("*.py")):
            if path.name == "_keras_compat.py":
                continue
            for line, expression in _private_attribute_uses(path):
                name = expression.rsplit(".", 1)[-1]
                if name in keras_private | {"_jax_state_synced"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {expression}")
    assert not offenders, "\n".join(offenders)


def test_keras_internals_hold_on_this_keras():
    _keras_compat.check_assumptions()


def test_a_broken_keras_assumption_names_the_keras_version(monkeypatch):
    monkeypatch.delattr(keras.Layer, "_flatten_layers")
    with pytest.raises(RuntimeError, match=keras.__version__) as error:
        _keras_compat.check_assumptions()
    assert "_flatten_layers" in str(error.value)


@once
def test_every_internal_is_documented_with_its_keras_file():
    source = (ROOT / "keras_transfer" / "_keras_compat.py").read_text()
    used = {name for _, e in _private_attribute_uses(ROOT / "keras_transfer" / "_keras_compat.py")
            for name in [e.rsplit(".", 1)[-1]] if name in _keras_private_names()
            or name == "_jax_state_synced"}
    listed = {
        entry.rsplit(".", 1)[-1]
        for entries in _keras_compat.KERAS_INTERNALS.values()
        for entry in entries
    }
    assert used <= listed, sorted(used - listed)
    for keras_file in _keras_compat.KERAS_INTERNALS:
        for part in keras_file.split(" + "):
            assert (pathlib.Path(keras.__file__).parent / "src" / part).exists(), part
            assert part in source
