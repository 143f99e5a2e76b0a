"""The one pass over the test split at the end of `keras-transfer fit`.

The model predicts every test example once; accuracy, macro-F1 (scikit-learn's
`f1_score(average="macro")`), the loss and the confusion matrix all come from
those predictions, and so do the sample predictions of the report.
"""

import keras
import numpy as np


def score_once(model, dataset, num_classes, samples=16):
    """Predict `dataset` once and score the predictions.

    Args:
        model: A compiled classifier with `num_classes` logits (or scores).
        dataset: Batches of `(images, integer labels)`, read once.
        num_classes: Int. Number of classes (rows and columns of the
            confusion matrix).
        samples: Int. How many of the first examples to keep for a
            prediction grid (`keras_transfer.cli.reports.plot_predictions`).

    Returns:
        `(metrics, samples)`. `metrics` is a dict: `examples`, `loss` (the
        compiled loss over all examples), `accuracy`, `macro_f1` and
        `confusion_matrix` (a list of rows, one per true class; columns are
        predicted classes). `samples` is `(images, labels, predicted)`, numpy
        arrays of the first `samples` examples, from the same pass.
    """
    from sklearn.metrics import confusion_matrix
    from sklearn.metrics import f1_score

    labels, scores, images = [], [], []
    for batch_images, batch_labels in dataset:
        batch_images = np.asarray(batch_images)
        if sum(len(i) for i in images) < samples:
            images.append(batch_images)
        labels.append(np.asarray(batch_labels))
        scores.append(keras.ops.convert_to_numpy(model.predict_on_batch(batch_images)))
    labels = np.concatenate(labels).astype("int64")
    scores = np.concatenate(scores)
    predicted = _classes(scores)
    loss = keras.ops.convert_to_numpy(model.loss(labels, scores))
    metrics = {
        "examples": int(len(labels)),
        "loss": float(loss),
        "accuracy": float(np.mean(predicted == labels)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "confusion_matrix": confusion_matrix(
            labels, predicted, labels=np.arange(num_classes)
        ).tolist(),
    }
    kept = np.concatenate(images)[:samples] if images else np.zeros((0,))
    return metrics, (kept, labels[: len(kept)], predicted[: len(kept)])


def _classes(scores):
    """Predicted classes of logits `(n, classes)`, or of one binary logit `(n, 1)`."""
    if scores.shape[-1] == 1:
        return (scores[:, 0] > 0).astype("int64")
    return np.argmax(scores, axis=-1)


def plot_confusion_matrix(path, matrix, class_names, title):
    """Write `matrix` (rows: true class, columns: predicted) as a PNG.

    Uses matplotlib's `Figure` directly (no pyplot state) and writes the file
    atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from keras_transfer._atomic import atomic_path

    matrix = np.asarray(matrix)
    size = max(3.0, 0.45 * len(class_names) + 1.5)
    figure = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, fraction=0.046)
    ticks = np.arange(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=90, fontsize=7)
    axis.set_yticks(ticks, class_names, fontsize=7)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if len(class_names) <= 20:
        threshold = matrix.max() / 2 if matrix.size else 0
        for row, column in np.ndindex(matrix.shape):
            axis.text(
                column, row, matrix[row, column], ha="center", va="center", fontsize=7,
                color="white" if matrix[row, column] > threshold else "black",
            )
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    return path
