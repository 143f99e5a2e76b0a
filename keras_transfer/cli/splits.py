"""Which data `keras-transfer fit` trains, validates and tests on.

Validation never touches the test split: it is the dataset's own validation
split when it has one, else a stratified, seeded fraction carved from the
training split with scikit-learn's `train_test_split`. A dataset without a
test split (a folder of class sub-folders, say) gets one carved the same way
first. The test split is
scored once, after training (`score_once` in the `scoring` module beside
this one).
"""

import dataclasses

import numpy as np

from keras_transfer import datasets
from keras_transfer._validation import check_number

# Names under which a dataset may ship its own validation split.
VALIDATION_SPLITS = ("validation", "val")


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """The three splits of a run; `*_indices` select a carved subset, or `None`.

    A split name of `None` is a `"folder:"` dataset read whole (one
    sub-folder per class, no split sub-folders).
    """

    train: str | None
    validation: str | None
    test: str | None
    train_indices: np.ndarray | None = None
    validation_indices: np.ndarray | None = None
    test_indices: np.ndarray | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    seed: int | None = None

    def report(self):
        """What each split is, for the run's `metrics.json`."""
        source = "all the data" if self.train is None else self.train
        train = {"split": self.train}
        if self.train_indices is not None:
            carved = [
                name
                for name, indices in (
                    ("test", self.test_indices), ("validation", self.validation_indices)
                )
                if indices is not None
            ]
            train.update(
                examples=len(self.train_indices),
                note=f"{source} less the {' and '.join(carved)} examples",
            )
        return {
            "train": train,
            "validation": self._carved_report(
                self.validation, self.validation_indices, self.val_fraction
            ),
            "test": {
                **self._carved_report(self.test, self.test_indices, self.test_fraction),
                "evaluated": "once, after training",
            },
        }

    def _carved_report(self, split, indices, fraction):
        if indices is None:
            return {"split": split, "carved_from_train": False}
        return {
            "split": split,
            "carved_from_train": True,
            "fraction": fraction,
            "stratified": True,
            "seed": self.seed,
            "examples": len(indices),
        }


def plan_splits(
    data, train_split=None, test_split=None, val_fraction=0.1, seed=0, test_fraction=0.2
):
    """Choose the training, validation and test data of a run.

    Args:
        data: A dataset spec, as for `keras_transfer.datasets.load`.
        train_split: String or `None`. The split to train on. Defaults to
            `None`: `"train"`, or for a `"folder:"` dataset without split
            sub-folders the folder itself.
        test_split: String or `None`. The split scored once at the end.
            Defaults to `None`: `"test"` when the dataset has it, else a
            stratified `test_fraction` carved from the training data.
        val_fraction: Float in (0, 1). Fraction of the training data held
            out for validation, stratified by class, when the dataset has
            no validation split of its own. Defaults to `0.1`.
        seed: Int. `random_state` of the carved splits. Defaults to `0`.
        test_fraction: Float in (0, 1). Fraction of the training data held
            out as the test split when the dataset has none. Defaults to
            `0.2`.

    Returns:
        A `SplitPlan`.
    """
    check_number("val_fraction", val_fraction, above=0, below=1)
    check_number("test_fraction", test_fraction, above=0, below=1)
    if train_split is None:
        train_split = "train" if has_split(data, "train") or not is_unsplit(data) else None
    else:
        check_split(data, train_split, "--train-split")
    if test_split is not None:
        check_split(data, test_split, "--test-split")
        if test_split == train_split:
            raise ValueError(
                "The test split must differ from the training split. Received: "
                f"--test-split {test_split} and --train-split {train_split}"
            )
    elif train_split is not None and has_split(data, "test") and train_split != "test":
        test_split = "test"
    validation = next(
        (
            name
            for name in VALIDATION_SPLITS
            if train_split is not None
            and name not in (train_split, test_split)
            and has_split(data, name)
        ),
        None,
    )
    if test_split is not None and validation is not None:
        return SplitPlan(train_split, validation, test_split)
    labels = datasets.labels(data, train_split)
    remaining = np.arange(len(labels))
    test_indices = validation_indices = None
    if test_split is None:
        remaining, test_indices = _stratified_split(
            remaining, labels, test_fraction, seed, data, train_split, "test"
        )
    if validation is None:
        remaining, validation_indices = _stratified_split(
            remaining, labels, val_fraction, seed, data, train_split, "validation"
        )
    return SplitPlan(
        train_split,
        train_split if validation is None else validation,
        train_split if test_split is None else test_split,
        train_indices=remaining,
        validation_indices=validation_indices,
        test_indices=test_indices,
        val_fraction=val_fraction if validation_indices is not None else None,
        test_fraction=test_fraction if test_indices is not None else None,
        seed=seed,
    )


def check_split(data, split, flag):
    """Raises a one-line error naming `flag` unless `data` has `split`."""
    if has_split(data, split):
        return
    hint = ""
    if is_unsplit(data):
        hint = f" It has no splits: leave out {flag} to read all of it (the test split is carved)."
    raise ValueError(f"Dataset {data!r} has no split {split!r} ({flag} {split}).{hint}")


def has_split(data, split):
    """Whether `data` has a non-empty split `split` (`None`: the folder or file)."""
    try:
        return bool(datasets.describe(data, split).num_examples)
    except (ValueError, KeyError):
        return False


def is_unsplit(data):
    """Whether `data` is read whole: a `"csv:"` file, or a `"folder:"` of
    class sub-folders (no split sub-folders)."""
    if not isinstance(data, str):
        return False
    if data.startswith("csv:"):
        return True
    return (
        data.startswith("folder:")
        and not any(has_split(data, name) for name in ("train", "test"))
        and has_split(data, None)
    )


def _stratified_split(positions, labels, fraction, seed, data, split, what):
    """`(kept, held out)`: sorted positions, `fraction` of them held out by class."""
    try:
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "Carving a stratified split needs scikit-learn: "
            "pip install 'keras-transfer[datasets]'  (or: pip install scikit-learn)"
        ) from error
    try:
        kept, held_out = train_test_split(
            positions,
            test_size=fraction,
            stratify=labels[positions],
            random_state=seed,
        )
    except ValueError as error:
        counts = np.bincount(labels[positions])
        where = "" if split is None else f" split {split!r}"
        flag = "--val-fraction" if what == "validation" else "--test-fraction"
        raise ValueError(
            f"Cannot carve a stratified {what} split of {fraction} from {data!r}{where} "
            f"({len(positions)} examples, per class {counts.tolist()}): {error} "
            f"Choose another {flag}, or add images. Received: {flag} {fraction}"
        ) from error
    return np.sort(kept), np.sort(held_out)
