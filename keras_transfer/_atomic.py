"""Crash-safe writes: a file or folder appears whole at its path, or not at all.

Everything is written to a temporary sibling (same folder, so the same file
system) and renamed into place. Replacing an existing folder exchanges the
two atomically on Linux (`renameat2(RENAME_EXCHANGE)`); where the system
cannot, the old folder is renamed aside first, which leaves a moment (two
renames) when the path is empty.

`crash_point(name)` marks the places the fault-injection tests kill the
process at (see docs/reliability.md): when the environment variable
`KERAS_TRANSFER_CRASH_AT` equals `name`, the process SIGKILLs itself there,
as a power cut or an OOM kill would.
"""

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import sys
import tempfile

CRASH_AT = "KERAS_TRANSFER_CRASH_AT"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def crash_point(name):
    """SIGKILLs this process if `$KERAS_TRANSFER_CRASH_AT == name` (tests only)."""
    if os.environ.get(CRASH_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def sibling(path, tag):
    """A fresh hidden path next to `path`: `.<name>.<tag>-<random>`."""
    folder, name = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.{tag}-", dir=folder)
    os.close(handle)
    os.remove(temporary)
    return temporary


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary sibling of `path` to write; renames it into place.

    The temporary name keeps the suffix of `path` (`model.keras` writers
    check it). If the block raises, the temporary file is removed and `path`
    is left as it was.
    """
    root, suffix = os.path.splitext(path)
    temporary = sibling(root, "partial") + suffix
    try:
        yield temporary
        crash_point(f"replace:{os.path.basename(path)}")
        replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            _remove(temporary)


def write_json(path, payload):
    """Writes `payload` as indented JSON to `path`, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True, default=float)
            f.write("\n")
    return path


def replace(new, path):
    """Puts the file or folder `new` at `path`, replacing what is there.

    A file replaces atomically (`os.replace`). A folder replacing a folder
    is exchanged atomically on Linux, then the old one is deleted. `new` is
    flushed to disk first, so a power cut cannot leave a renamed but empty
    file.
    """
    _fsync(new)
    if os.path.isdir(new) and os.path.isdir(path) and not os.path.islink(path):
        old = sibling(path, "old")
        if _exchange(new, path):
            crash_point("replace:exchanged")
            os.rename(new, old)  # Out of the way in one step, then deleted.
        else:
            os.rename(path, old)
            os.rename(new, path)
        _remove(old)
    else:
        if os.path.lexists(path) and os.path.isdir(new) != os.path.isdir(path):
            _remove(path)
        os.replace(new, path)
    _fsync_one(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _exchange(a, b):
    """Atomically swaps two paths; `False` where the system cannot."""
    if sys.platform != "linux":
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), b)


def _fsync(path):
    """Flushes a file, or a folder tree's files and entries, to disk."""
    if not os.path.isdir(path):
        _fsync_one(path, os.O_RDONLY)
        return
    for folder, _, files in os.walk(path):
        for name in files:
            if not os.path.islink(os.path.join(folder, name)):
                _fsync_one(os.path.join(folder, name), os.O_RDONLY)
        _fsync_one(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync_one(path, flags):
    handle = os.open(path, flags)
    try:
        os.fsync(handle)
    except OSError as error:
        # Some file systems cannot fsync a folder; its entries still land.
        if not (flags != os.O_RDONLY and error.errno in (errno.EINVAL, errno.EBADF)):
            raise
    finally:
        os.close(handle)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
