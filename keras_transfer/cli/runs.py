"""Run folders of `keras-transfer fit`: built beside `--out`, swapped in whole, resumable.

A run is built in the hidden sibling `.<name>.incomplete/` of `--out`:

```
.<name>.incomplete/
    run.json            the settings (checked by --resume) and `finished`
    checkpoints/
        epoch-<k>/      the last committed epoch: BackupAndRestore's files,
                        EarlyStopping's state, the history so far
        work/           where BackupAndRestore writes (never read directly)
    model.keras, metrics.json, curves.png, saved_model/   (at the end)
```

Every file is written to a temporary sibling and renamed into place, and an
epoch's checkpoint becomes visible only as a whole folder. When everything
is written, `run.json` is marked finished, the checkpoints are removed and
the folder is swapped with `--out` (one atomic exchange on Linux). So a kill
at any moment leaves `--out` as it was (the old run, or nothing) or the new
run, whole; `--resume` continues from the last committed epoch, or only
completes the swap of a finished run.
"""

import json
import os
import re
import shutil
import time

import keras
import numpy as np

from keras_transfer import _atomic

CHECKPOINTS = "checkpoints"
SETTINGS = "run.json"
_EPOCH_FOLDER = re.compile(r"epoch-(\d+)")


class Run:
    """The staging folder of one `fit` run and its checkpoints.

    Use `Run.start`; `path` is where the run's files go, `finish()` swaps
    them in as `out`.
    """

    def __init__(self, out, path, settings):
        self.out = out
        self.path = path
        self.settings = settings
        self.checkpoints = os.path.join(path, CHECKPOINTS)

    @classmethod
    def start(cls, out, settings, overwrite=False, resume=False):
        """Checks `out`, then creates (or, with `resume`, reopens) its run.

        Raises `ValueError` naming the problem, before any training: `out`
        is a file, or holds a run and neither `overwrite` nor `resume` was
        given, or cannot be written; `resume` without an interrupted run or
        with other settings than it was started with.
        """
        out = os.path.abspath(out)
        parent, name = os.path.split(out)
        staging = os.path.join(parent, f".{name}.incomplete")
        if os.path.exists(out) and not os.path.isdir(out):
            raise ValueError(
                f"Output folder {out!r} is an existing file, not a folder. "
                "Choose another `--out`."
            )
        if os.path.isdir(staging) and _swapped_out(staging, out):
            # Killed right after the swap: the staging folder holds the
            # previous run, which the finished run in `out` replaced.
            shutil.rmtree(staging)
        if os.path.isdir(staging):
            if resume:
                run = cls(out, staging, settings)
                run._check_same_settings()
                return run
            if not overwrite:
                raise ValueError(
                    f"An interrupted run of {out!r} is in {staging!r}. Pass "
                    "`--resume` to continue it, or `--overwrite` to start over."
                )
            shutil.rmtree(staging)
        elif resume:
            raise ValueError(
                f"Nothing to resume: no interrupted run of {out!r} (no "
                f"{staging!r}). Run without `--resume`."
            )
        if os.path.isdir(out) and os.listdir(out) and not overwrite:
            raise ValueError(
                f"Output folder {out!r} exists and is not empty. Pass "
                "`--overwrite` to replace it (it is replaced only once the new "
                "run is complete), or choose another `--out`."
            )
        try:
            os.makedirs(os.path.join(staging, CHECKPOINTS))
        except OSError as error:
            raise ValueError(
                f"Output folder {out!r} cannot be written "
                f"({error.strerror or error}). Choose a writable `--out`."
            ) from error
        run = cls(out, staging, settings)
        _atomic.write_json(
            run.file(SETTINGS), {"settings": settings, "finished": False, "started": time.time()}
        )
        return run

    @property
    def finished(self):
        """Whether every file of the run is written (only the swap is left)."""
        return _read_settings(self.path)["finished"]

    def file(self, name):
        """Path of the run file `name` (inside the staging folder)."""
        return os.path.join(self.path, name)

    def has_checkpoint(self):
        """Whether an epoch was committed (so `--resume` can continue)."""
        return self._latest_checkpoint() is not None

    def discard(self):
        """Deletes the run folder (a failed run; `out` is untouched)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def finish(self):
        """Marks the run finished, drops its checkpoints and swaps it in as `out`."""
        _atomic.write_json(self.file(SETTINGS), {**_read_settings(self.path), "finished": True})
        if os.path.isdir(self.checkpoints):
            shutil.rmtree(self.checkpoints)
        _atomic.crash_point("fit:swap")
        _atomic.replace(self.path, self.out)
        return self.out

    def _check_same_settings(self):
        saved = _read_settings(self.path)["settings"]
        differ = sorted(k for k in set(saved) | set(self.settings) if saved.get(k) != self.settings.get(k))
        if differ:
            shown = ", ".join(
                f"{k}: {saved.get(k)!r} then, {self.settings.get(k)!r} now" for k in differ
            )
            raise ValueError(
                f"Cannot resume the run in {self.path!r} with other settings "
                f"({shown}). Resume with the same flags, or pass `--overwrite` "
                "to start over."
            )

    def checkpoint_callbacks(self, callbacks):
        """`BackupAndRestore` and the commit of its files, to add to `callbacks`.

        Returns `[BackupAndRestore, commit]`: append them after the other
        callbacks (after `StagedUnfreezing`, which must precede
        `BackupAndRestore`, and after `EarlyStopping`, whose state the
        commit saves and restores). The commit's `history` is the whole
        run's per-epoch logs, resumed epochs included.
        """
        work = os.path.join(self.checkpoints, "work")
        latest = self._latest_checkpoint()
        if os.path.isdir(work):
            shutil.rmtree(work)
        if latest is not None:
            os.makedirs(work)
            for name in os.listdir(latest):
                if not name.startswith("state."):
                    shutil.copy2(os.path.join(latest, name), os.path.join(work, name))
        early_stopping = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]
        return [
            keras.callbacks.BackupAndRestore(work),
            _Commit(self.checkpoints, work, latest, early_stopping),
        ]

    def _latest_checkpoint(self):
        if not os.path.isdir(self.checkpoints):
            return None
        epochs = [
            int(m.group(1))
            for m in map(_EPOCH_FOLDER.fullmatch, os.listdir(self.checkpoints))
            if m
        ]
        return os.path.join(self.checkpoints, f"epoch-{max(epochs)}") if epochs else None


def _read_settings(folder):
    with open(os.path.join(folder, SETTINGS)) as f:
        return json.load(f)


def finished_settings(folder):
    """The settings of the finished run in `folder`, or `None` if it holds none."""
    if not os.path.isfile(os.path.join(folder, SETTINGS)):
        return None
    saved = _read_settings(folder)
    return saved["settings"] if saved.get("finished") else None


def _swapped_out(staging, out):
    """Whether `staging` is a finished run older than the one in `out`."""
    if not os.path.isfile(os.path.join(out, SETTINGS)):
        return False
    old, new = _read_settings(staging), _read_settings(out)
    return old["finished"] and old["started"] < new["started"]


class _Commit(keras.callbacks.Callback):
    """Turns each epoch's `BackupAndRestore` files into one committed folder.

    Keras' `BackupAndRestore` overwrites its weights file, then its
    metadata file, in place: a kill between the two (or during either)
    leaves weights and epoch number that do not belong together. This
    callback, after it, moves the files into `epoch-<k>/` together with
    `EarlyStopping`'s state and the history, and makes the folder visible by
    one rename; a resumed run starts from the newest such folder.
    """

    def __init__(self, checkpoints, work, latest, early_stopping):
        super().__init__()
        self.checkpoints = checkpoints
        self.work = work
        self.latest = latest
        self.early_stopping = early_stopping
        self.history = {}

    def on_train_begin(self, logs=None):
        if self.latest is None:
            return
        with open(os.path.join(self.latest, "state.json")) as f:
            state = json.load(f)
        self.history = state["history"]
        for callback, saved in zip(self.early_stopping, state["early_stopping"]):
            for name in ("wait", "stopped_epoch", "best", "best_epoch"):
                setattr(callback, name, saved[name])
            if saved["has_best_weights"]:
                with np.load(os.path.join(self.latest, f"state.best_weights.{saved['index']}.npz")) as f:
                    callback.best_weights = [f[f"arr_{i}"] for i in range(len(f.files))]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        committed = os.path.join(self.checkpoints, f"epoch-{epoch + 1}")
        partial = _atomic.sibling(committed, "partial")
        os.makedirs(partial)
        for name in os.listdir(self.work):
            os.replace(os.path.join(self.work, name), os.path.join(partial, name))
        state = {"history": self.history, "early_stopping": []}
        for index, callback in enumerate(self.early_stopping):
            best_weights = callback.best_weights
            state["early_stopping"].append(
                {
                    "index": index,
                    "wait": callback.wait,
                    "stopped_epoch": callback.stopped_epoch,
                    "best": None if callback.best is None else float(callback.best),
                    "best_epoch": callback.best_epoch,
                    "has_best_weights": best_weights is not None,
                }
            )
            if best_weights is not None:
                np.savez(os.path.join(partial, f"state.best_weights.{index}.npz"), *best_weights)
        with open(os.path.join(partial, "state.json"), "w") as f:
            json.dump(state, f)
        _atomic.crash_point(f"fit:commit:{epoch}")
        _atomic.replace(partial, committed)
        for name in os.listdir(self.checkpoints):
            match = _EPOCH_FOLDER.fullmatch(name)
            if match and int(match.group(1)) <= epoch:
                shutil.rmtree(os.path.join(self.checkpoints, name))
        self.latest = committed
        _atomic.crash_point(f"fit:epoch_end:{epoch}")
