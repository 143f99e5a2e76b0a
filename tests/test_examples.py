"""Every script in `examples/` runs: `python examples/X.py --smoke` in a fresh process.

Each example states in its header docstring the exact full-mode command
(`python examples/X.py`), its expected result, and the `--smoke` command;
its `--smoke` mode runs end to end offline in seconds (tiny sizes, random
weights or the local MiniLM preset, mock tfds data or the built-in digits).
An example whose header says ``Needs `keras_transfer/x.py` `` is skipped,
with that reason, where that module does not exist (an API not merged yet).
The smoke run uses this test's Keras backend (one backend per example per
run, see `SMOKE_BACKEND`); the time each one took is printed at the end of
the test run.
"""

import ast
import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import time

import keras
import pytest

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[1] / "examples"
# `_smoke.py` and other `_*.py` files are helpers of the smoke mode, not examples.
EXAMPLES = sorted(path for path in EXAMPLES_DIR.glob("*.py") if not path.name.startswith("_"))


def required_modules(path):
    """Modules the header of `path` names on a line ``Needs `keras_transfer/x.py` ``."""
    header = ast.get_docstring(ast.parse(path.read_text())) or ""
    files = re.findall(r"^Needs `([\w/]+)\.py`", header, flags=re.MULTILINE)
    return [name.replace("/", ".") for name in files]


# Each smoke run costs a process start, imports and compiles (10-60 s on
# 2 cores); every example on every backend would add about a quarter hour to
# CI. So each example runs on one backend per run, the backends taken in
# turn over the sorted examples (every backend runs some of them);
# KT_EXAMPLES_ALL_BACKENDS=1 runs every example on every backend.
BACKENDS = ("tensorflow", "jax", "torch")
SMOKE_BACKEND = {path.stem: BACKENDS[i % len(BACKENDS)] for i, path in enumerate(EXAMPLES)}


def header_problems(path):
    """What the example at `path` lacks: a list of messages, empty when it is complete."""
    source = path.read_text()
    header = ast.get_docstring(ast.parse(source)) or ""
    command = f"python examples/{path.name}"
    lines = [line.strip() for line in header.splitlines()]
    problems = []
    if not any(line.endswith(command) for line in lines):
        problems.append(f"its header docstring lacks the full-mode command '{command}'")
    if not any(line.endswith(f"{command} --smoke") for line in lines):
        problems.append(f"its header docstring lacks the smoke command '{command} --smoke'")
    if "expected" not in header.lower():
        problems.append("its header docstring states no expected result")
    if '"--smoke"' not in source:
        problems.append("it defines no '--smoke' flag")
    return problems


class _SmokeTimes:
    """A pytest plugin that prints how long each example's smoke run took."""

    def __init__(self):
        self.seconds = {}

    def pytest_terminal_summary(self, terminalreporter):
        if not self.seconds:
            return
        total = sum(self.seconds.values())
        each = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.items())
        terminalreporter.write_line(
            f"examples --smoke on {keras.backend.backend()}: {len(self.seconds)} ran "
            f"in {total:.0f} s ({each})"
        )


@pytest.fixture(scope="module")
def smoke_times(request):
    plugin = _SmokeTimes()
    request.config.pluginmanager.register(plugin, "keras_transfer_example_times")
    return plugin.seconds


def test_examples_are_found():
    names = {path.name for path in EXAMPLES}
    assert {"zoo_fit_export.py", "dann_digits.py", "callbacks_in_your_script.py"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_header_states_commands_and_result(path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("reads the source only: checked once, on the tensorflow backend")
    assert header_problems(path) == [], f"examples/{path.name}: {header_problems(path)}"


def test_header_check_catches_a_missing_smoke_flag_and_command(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("reads the source only: checked once, on the tensorflow backend")
    bare = tmp_path / "bare.py"
    bare.write_text('"""Trains something.\n\n    python examples/other.py\n"""\nprint(1)\n')
    assert header_problems(bare) == [
        "its header docstring lacks the full-mode command 'python examples/bare.py'",
        "its header docstring lacks the smoke command 'python examples/bare.py --smoke'",
        "its header docstring states no expected result",
        "it defines no '--smoke' flag",
    ]
    complete = tmp_path / "complete.py"
    complete.write_text(
        '"""Trains something.\n\n    KERAS_BACKEND=jax python examples/complete.py\n\n'
        "Expected result: 0.9.\n\n    python examples/complete.py --smoke\n"
        '"""\nimport argparse\nargparse.ArgumentParser().add_argument("--smoke")\n'
    )
    assert header_problems(complete) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_smoke_runs(path, tmp_path, smoke_times):
    missing = [name for name in required_modules(path) if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"examples/{path.name} needs {missing}, which this checkout lacks")
    backend = keras.backend.backend()
    if backend != SMOKE_BACKEND[path.stem] and not os.environ.get("KT_EXAMPLES_ALL_BACKENDS"):
        pytest.skip(
            f"smoke-tested on {SMOKE_BACKEND[path.stem]} in this suite "
            "(KT_EXAMPLES_ALL_BACKENDS=1 runs it on every backend)"
        )
    # Run where it cannot litter the checkout: examples write e.g. runs/... .
    env = {**os.environ, "KERAS_BACKEND": backend}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(path), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    smoke_times[path.stem] = time.perf_counter() - start
    assert done.returncode == 0, (
        f"python examples/{path.name} --smoke failed (exit {done.returncode}):\n"
        f"{done.stderr[-4000:]}"
    )
