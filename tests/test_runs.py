"""Crash-safe writes and run folders, without training (backend-independent)."""

import json
import os

import keras
import pytest

from keras_transfer import _atomic
from keras_transfer.cli.runs import Run

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="file handling is backend-independent; checked on the tensorflow run",
)


def _tree(root):
    return {
        os.path.relpath(os.path.join(folder, name), root): (root / folder / name).read_text()
        for folder, _, names in os.walk(root)
        for name in names
    }


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_folder_replaces_a_folder_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(_atomic, "_exchange", lambda a, b: False)
    (tmp_path / "new" / "sub").mkdir(parents=True)
    (tmp_path / "new" / "sub" / "a.txt").write_text("new")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "stale.txt").write_text("old")
    _atomic.replace(str(tmp_path / "new"), str(tmp_path / "dest"))
    assert os.listdir(tmp_path) == ["dest"]
    assert _tree(tmp_path / "dest") == {os.path.join("sub", "a.txt"): "new"}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    _atomic.write_json(str(path), {"run": 1})
    with pytest.raises(RuntimeError):
        with _atomic.atomic_path(str(path)) as temporary:
            assert temporary.endswith(".json") and os.path.dirname(temporary) == str(tmp_path)
            with open(temporary, "w") as f:
                f.write("{half")
            raise RuntimeError("killed mid-write")
    assert json.loads(path.read_text()) == {"run": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.bad_input
def test_a_run_swapped_out_by_a_killed_finish_is_not_resumed(tmp_path):
    """Killed between the exchange and the clean-up: the old run sits where the
    new one was staged; it must not be swapped back in."""
    out = tmp_path / "run"
    old = Run.start(str(out), {"epochs": 1})
    old.finish()
    new = Run.start(str(out), {"epochs": 2}, overwrite=True)
    settings = json.loads(open(new.file("run.json")).read())
    _atomic.write_json(new.file("run.json"), {**settings, "finished": True})
    assert _atomic._exchange(new.path, str(out))  # As `finish` does; then "killed".
    with pytest.raises(ValueError, match="Nothing to resume"):
        Run.start(str(out), {"epochs": 2}, resume=True)
    assert json.loads((out / "run.json").read_text())["settings"] == {"epochs": 2}
    assert sorted(os.listdir(tmp_path)) == ["run"]
