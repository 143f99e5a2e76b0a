"""Report files of `keras-transfer fit` and the demo, each written atomically."""

import os

from keras_transfer._atomic import atomic_path


def prepare_output_dir(path, overwrite):
    """Make sure `path` can take a run's files before any training starts.

    Creates `path` if needed. Raises `ValueError` if it exists, holds files and
    `overwrite` is false (so a finished run is never lost), or if it cannot be
    created or written.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"Output folder {path!r} is an existing file, not a folder. "
            "Choose another `--out`."
        )
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise ValueError(
            f"Output folder {path!r} exists and is not empty. Pass `--overwrite` "
            "to replace the files in it, or choose another `--out`."
        )
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"Output folder {path!r} cannot be written ({error.strerror or error}). "
            "Choose a writable `--out`."
        ) from error
    return path


def plot_curves(path, histories, title):
    """Plot per-epoch curves of `histories` ({run name: keras History.history}).

    One panel per metric family (loss, accuracy); validation curves dashed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [
        f for f in ("loss", "accuracy")
        if any(f in h or f"val_{f}" in h for h in histories.values())
    ]
    figure, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.6))
    axes = [axes] if len(families) == 1 else list(axes)
    for axis, family in zip(axes, families):
        for run, history in histories.items():
            for key, style in ((family, "-"), (f"val_{family}", "--")):
                if key in history:
                    values = history[key]
                    axis.plot(range(1, len(values) + 1), values, style, label=f"{run} {key}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(family)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
    return path
