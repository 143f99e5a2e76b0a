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


def plot_curves(path, histories, title, markers=()):
    """Plot per-epoch curves of `histories` ({run name: keras History.history}).

    One panel per metric family (loss, accuracy); training curves solid,
    validation curves dashed, one colour per run; epochs on integer ticks
    (1-based, as Keras prints them); each `(epoch, label)` in `markers` is a
    vertical line at the start of that (0-based) epoch, e.g. an unfreezing
    stage. The legend sits below the panels, never over the curves. Does
    not touch pyplot's global state.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    families = [
        f for f in ("loss", "accuracy")
        if any(_keys(h, f) for h in histories.values())
    ]
    if not families:
        raise ValueError(
            "Nothing to plot: no history has a loss or accuracy curve. "
            f"Received keys: {sorted({k for h in histories.values() for k in h})}"
        )
    figure = Figure(figsize=(5.2 * len(families), 4.2))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(families), squeeze=False)[0]
    colours = {run: f"C{i % 10}" for i, run in enumerate(histories)}
    for axis, family in zip(axes, families):
        for run, history in histories.items():
            for key in _keys(history, family):
                values = history[key]
                axis.plot(
                    range(1, len(values) + 1),
                    values,
                    "--" if key.startswith("val_") else "-",
                    color=colours[run],
                    marker="." if len(values) < 30 else None,
                    label=f"{run}: {key}",
                )
        for epoch, label in markers:
            axis.axvline(epoch + 0.5, color="0.4", linestyle=":", linewidth=1)
            axis.annotate(
                label, (epoch + 0.5, 1.0), xycoords=("data", "axes fraction"),
                rotation=90, va="top", ha="right", fontsize=7, color="0.3",
            )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(family)
        axis.set_title(family)
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for axis in axes[1:]:
        more = axis.get_legend_handles_labels()
        handles += [h for h, l in zip(*more) if l not in labels]
        labels += [l for l in more[1] if l not in labels]
    figure.suptitle(title)
    figure.legend(
        handles, labels, loc="lower center", ncol=min(4, len(labels)),
        fontsize=7, frameon=False,
    )
    rows = -(-len(labels) // 4)
    figure.tight_layout(rect=(0, 0.04 + 0.035 * rows, 1, 1))
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    return path


def _keys(history, family):
    """History keys of a metric family: `loss`, `val_loss`, `label_accuracy`..."""
    return [
        key for key in history
        if key.removeprefix("val_") == family
        or key.removeprefix("val_").endswith(f"_{family}")
        and not key.removeprefix("val_").startswith("domain")
    ]


def plot_predictions(path, images, labels, predictions, class_names, columns=8):
    """A grid of sample images titled `predicted (true)`, wrong ones in red.

    Args:
        path: Output PNG.
        images: Array `(n, height, width, channels)` of raw pixels (0..255).
        labels: Integer true classes, `(n,)`.
        predictions: Integer predicted classes, `(n,)`.
        class_names: Sequence of class names, indexed by class.
        columns: Images per row.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = np.asarray(images)
    count = len(images)
    if count == 0:
        raise ValueError("Nothing to plot: `images` is empty.")
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(1.4 * columns, 1.6 * rows))
    FigureCanvasAgg(figure)
    for index in range(count):
        axis = figure.add_subplot(rows, columns, index + 1)
        image = np.clip(images[index], 0, 255).astype("uint8")
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                    cmap="gray" if image.shape[-1] == 1 else None)
        predicted, true = int(predictions[index]), int(labels[index])
        axis.set_title(
            f"{class_names[predicted]}\n({class_names[true]})",
            fontsize=7,
            color="black" if predicted == true else "red",
        )
        axis.axis("off")
    figure.suptitle("predicted (true)", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    return path
