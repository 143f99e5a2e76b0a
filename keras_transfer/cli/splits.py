"""Which data `keras-transfer fit` trains, validates and tests on.

Validation never touches the test split: it is the dataset's own validation
split when it has one, else a stratified, seeded fraction carved from the
training split with scikit-learn's `train_test_split`. The test split is
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
    """The three splits of a run; `*_indices` select a carved subset, or `None`."""

    train: str
    validation: str
    test: str
    train_indices: np.ndarray | None = None
    validation_indices: np.ndarray | None = None
    val_fraction: float | None = None
    seed: int | None = None

    @property
    def carved(self):
        """Whether the validation examples were carved from the training split."""
        return self.validation_indices is not None

    def report(self):
        """What each split is, for the run's `metrics.json`."""
        if self.carved:
            validation = {
                "split": self.train,
                "carved_from_train": True,
                "fraction": self.val_fraction,
                "stratified": True,
                "seed": self.seed,
                "examples": len(self.validation_indices),
            }
            train = {
                "split": self.train,
                "examples": len(self.train_indices),
                "note": "the training split less the validation examples",
            }
        else:
            validation = {"split": self.validation, "carved_from_train": False}
            train = {"split": self.train}
        test = {"split": self.test, "evaluated": "once, after training"}
        return {"train": train, "validation": validation, "test": test}


def plan_splits(data, train_split="train", test_split="test", val_fraction=0.1, seed=0):
    """Choose the validation data of a run; check that the test split exists.

    Args:
        data: A dataset spec, as for `keras_transfer.datasets.load`.
        train_split: String. The split to train on. Defaults to `"train"`.
        test_split: String. The split scored once at the end. Defaults to
            `"test"`.
        val_fraction: Float in (0, 1). Fraction of `train_split` held out for
            validation, stratified by class, when the dataset has no
            validation split of its own. Defaults to `0.1`.
        seed: Int. `random_state` of the split. Defaults to `0`.

    Returns:
        A `SplitPlan`.
    """
    check_number("val_fraction", val_fraction, above=0, below=1)
    if test_split == train_split:
        raise ValueError(
            "Invalid value received for argument `test_split`: the test split "
            "must differ from the training split. "
            f"Received: test_split={test_split!r}, train_split={train_split!r}"
        )
    datasets.describe(data, test_split)  # Fails now, naming what exists.
    for name in VALIDATION_SPLITS:
        if name not in (train_split, test_split) and _has_split(data, name):
            return SplitPlan(train_split, name, test_split)
    labels = datasets.labels(data, train_split)
    train, validation = _stratified_split(labels, val_fraction, seed, data, train_split)
    return SplitPlan(
        train_split,
        train_split,
        test_split,
        train_indices=train,
        validation_indices=validation,
        val_fraction=val_fraction,
        seed=seed,
    )


def _has_split(data, split):
    try:
        return bool(datasets.describe(data, split).num_examples)
    except (ValueError, KeyError):
        return False


def _stratified_split(labels, val_fraction, seed, data, split):
    try:
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "Carving a stratified validation split needs scikit-learn: "
            "pip install 'keras-transfer[datasets]'  (or: pip install scikit-learn)"
        ) from error
    try:
        train, validation = train_test_split(
            np.arange(len(labels)),
            test_size=val_fraction,
            stratify=labels,
            random_state=seed,
        )
    except ValueError as error:
        counts = np.bincount(labels)
        raise ValueError(
            f"Cannot carve a stratified validation split of {val_fraction} from "
            f"{data!r} split {split!r} ({len(labels)} examples, per class "
            f"{counts.tolist()}): {error} Choose another `--val-fraction`. "
            f"Received: val_fraction={val_fraction}"
        ) from error
    return np.sort(train), np.sort(validation)
