"""Model selection without target labels, and the recommended entry point.

`select` trains candidate methods on the same data from the same initial
weights, scores each with a validator that needs no target labels, and
returns the best one, or falls back to source-only when no candidate is
predicted to beat it. `adapt` is `select` with the defaults this library
recommends. A candidate is one entry of `CANDIDATES`:

```python
CANDIDATES["my_method"] = lambda features, head, context, **options: model
```

where `model` is compiled, trains with `model.fit` on
`keras_transfer.datasets.paired_dataset` batches and exposes `.classifier`
(as `keras_transfer.adaptation.AdaptationModel` does).
"""

import dataclasses
import inspect
import math
import time
from typing import Callable

import keras
import numpy as np

from keras_transfer import _keras_compat
from keras_transfer._validation import check_int
from keras_transfer._validation import check_number
from keras_transfer.adaptation.alignment import AdaptationModel
from keras_transfer.adaptation.alignment import build_coral
from keras_transfer.adaptation.alignment import build_dann
from keras_transfer.adaptation.alignment import build_mmd
from keras_transfer.adaptation.alignment import compile_adaptation
from keras_transfer.adaptation.alignment import model_inputs
from keras_transfer.adaptation.batch_norm import adapt_batch_norm
from keras_transfer.adaptation.self_training import build_entropy_minimization
from keras_transfer.adaptation.self_training import build_fixmatch
from keras_transfer.adaptation.self_training import build_mcc
from keras_transfer.adaptation.self_training import default_strong_augmentation
from keras_transfer.adaptation.validators import dev_risk
from keras_transfer.adaptation.validators import importance_weights
from keras_transfer.adaptation.validators import snd_score
from keras_transfer.datasets.paired import paired_dataset
from keras_transfer.losses.entropy import EntropyLoss
from keras_transfer.schedules.dann_decay import DANNDecay

VALIDATORS = ("snd", "dev")
# The rule `adapt` uses; chosen on the benchmark's exploration seed (100),
# measured on seeds 0-2 (bench/domain_adaptation/README.md).
DEFAULT_VALIDATOR = "dev"
DEFAULT_MARGIN = 0.0
DEFAULT_SOURCE_TOLERANCE = 0.03
DEFAULT_COLLAPSE_RATIO = 1.5
# Held-out target rows the validator needs at the least.
MIN_VALIDATION_ROWS = 20


@dataclasses.dataclass(frozen=True)
class CandidateContext:
    """What a candidate builder gets besides the feature extractor and head.

    Attributes:
        input_shape: Tuple, the shape of one input row.
        num_classes: Integer, the number of classes.
        total_steps: Integer, optimizer steps of the candidate's training.
        value_range: Tuple `(low, high)` of the source inputs' values.
        make_optimizer: Callable `() -> keras.optimizers.Optimizer`, a fresh
            optimizer for each candidate.
    """

    input_shape: tuple
    num_classes: int
    total_steps: int
    value_range: tuple
    make_optimizer: Callable


def build_source_only(
    feature_extractor, label_head, optimizer=None, input_shape=None, name="source_only"
):
    """The no-adaptation baseline, on the same batches as the adapted models.

    An `AdaptationModel` whose target loss has weight 0: the label loss reads
    the source rows of `paired_dataset` batches and nothing learns from the
    target rows, so it takes the same steps, batches and schedule as the
    methods it is compared with. (Layers that use batch statistics, such as
    BatchNormalization in training mode, still see the target rows of each
    batch.)

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
        label_head: A Keras model or layer mapping features to class logits.
        optimizer: Optimizer for `compile`. Defaults to `"adam"`.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        name: String. Model name.

    Returns:
        A compiled `keras_transfer.adaptation.AdaptationModel`.
    """
    inputs, features = model_inputs(feature_extractor, input_shape)
    logits = label_head(features)
    model = AdaptationModel(
        inputs,
        {"label": logits, "domain": keras.layers.Identity(name="target_logits")(logits)},
        name=name,
    )
    return compile_adaptation(model, label_head, EntropyLoss(), 0.0, optimizer, [])


def _common(context):
    return {"optimizer": context.make_optimizer(), "input_shape": context.input_shape}


def _source_only(features, head, context):
    return build_source_only(features, head, **_common(context))


def _dann(features, head, context, weight=1.0):
    return build_dann(features, head, hp_lambda=weight, **_common(context))


def _coral(features, head, context, weight=1.0):
    return build_coral(features, head, domain_loss_weight=weight, **_common(context))


def _mmd(features, head, context, weight=1.0):
    return build_mmd(features, head, domain_loss_weight=weight, **_common(context))


def _entropy(features, head, context, weight=0.1):
    return build_entropy_minimization(
        features, head, domain_loss_weight=weight, **_common(context)
    )


def _mcc(features, head, context, weight=1.0):
    return build_mcc(features, head, domain_loss_weight=weight, **_common(context))


def _fixmatch(features, head, context, weight=1.0, threshold=0.95):
    return build_fixmatch(
        features,
        head,
        augmentation=default_strong_augmentation(context.value_range),
        threshold=threshold,
        domain_loss_weight=weight,
        **_common(context),
    )


def _no_options(features, head, context):
    """AdaBN's signature: it takes no options."""


def _check_options(spec, builder, options):
    """Unknown options and out-of-range values fail before any training."""
    try:
        inspect.signature(builder).bind(None, None, None, **options)
    except TypeError:
        raise ValueError(
            f"Invalid value received for argument `candidates`: candidate "
            f"{spec!r} takes no option(s) {sorted(options)}. Received: {spec!r}"
        ) from None
    if "weight" in options:  # lambda for DANN, the loss weight for the others
        check_number("weight", options["weight"], minimum=0)
    if "threshold" in options:
        check_number("threshold", options["threshold"], minimum=0, maximum=1)


# name -> builder(feature_extractor, label_head, context, **options) -> model.
# A method joins `select`/`adapt` (and the benchmark) with one line here.
CANDIDATES = {
    "source_only": _source_only,
    "dann": _dann,
    "coral": _coral,
    "mmd": _mmd,
    "entropy": _entropy,
    "mcc": _mcc,
    "fixmatch": _fixmatch,
}
# Not trained: source-only with its BatchNormalization statistics re-estimated
# on the target (`adapt_batch_norm`); scored like the trained candidates.
ADABN = "adabn"
BASELINE = "source_only"

# The recommended candidates, in the order `budget` takes them.
RECOMMENDED = ("source_only", "adabn", "mmd", "mcc", "dann")


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    """How one candidate did (`AdaptationReport.candidates`).

    Attributes:
        name: The candidate's name (`"dann"`, `"mcc:weight=0.3"`, ...).
        score: The validator's score, higher is better (`-risk` for DEV);
            `None` when the candidate did not finish (see `status`).
        snd: SND of its held-out target predictions.
        dev_risk: DEV risk (lower is better).
        source_accuracy: Accuracy on held-out labelled source rows.
        target_class_share: Largest share of one class among its held-out
            target predictions (1.0 = every row predicted as one class).
        seconds: Training time.
        status: `"ok"`, or why it was skipped or failed.
        test_accuracy: Accuracy on `target_test`, when given; never used to
            choose.
    """

    name: str
    score: float | None
    snd: float | None
    dev_risk: float | None
    source_accuracy: float | None
    target_class_share: float | None
    seconds: float
    status: str = "ok"
    test_accuracy: float | None = None


@dataclasses.dataclass(frozen=True)
class AdaptationReport:
    """What `select` / `adapt` tried, what the validator said, what it chose and why.

    Attributes:
        chosen: Name of the candidate returned.
        fell_back: True when the baseline (source-only) was returned because
            no candidate was predicted to beat it.
        reason: One sentence: why `chosen`.
        validator: `"snd"` or `"dev"`.
        margin: Score gain over the baseline a candidate needed.
        source_tolerance: Source validation accuracy a candidate could lose.
        collapse_ratio: How much larger than the baseline's a candidate's
            top predicted-class share on the target could be.
        candidates: Tuple of `CandidateResult`, in training order.
        settings: Dict of the settings used (epochs, split sizes, ...).
    """

    chosen: str
    fell_back: bool
    reason: str
    validator: str
    margin: float
    source_tolerance: float
    collapse_ratio: float
    candidates: tuple
    settings: dict

    def result(self, name):
        """The `CandidateResult` named `name`."""
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate
        raise KeyError(
            f"No candidate {name!r}; tried: {[c.name for c in self.candidates]}"
        )

    def choice_among(self, names):
        """`(chosen, fell_back, reason)` had only `names` been candidates.

        The rule looks at each candidate against the baseline on its own,
        so this is what `select` returns for that subset (same data, seeds
        and training): the benchmark reads several choices from one run.
        """
        results = [c for c in self.candidates if c.name in set(names)]
        return _choose(results, self.margin, self.source_tolerance, self.collapse_ratio)

    def summary(self):
        """A markdown table of the candidates and a line on the choice."""
        has_test = any(c.test_accuracy is not None for c in self.candidates)
        header = "| candidate | score | SND | DEV risk | source acc | top class share | status |"
        rule = "|---|---|---|---|---|---|---|"
        if has_test:
            header += " test acc (not used) |"
            rule += "---|"
        lines = [header, rule]
        for c in self.candidates:
            cells = [
                c.name + (" **(chosen)**" if c.name == self.chosen else ""),
                _cell(c.score, ".4f"),
                _cell(c.snd, ".4f"),
                _cell(c.dev_risk, ".4f"),
                _cell(c.source_accuracy, ".3f"),
                _cell(c.target_class_share, ".2f"),
                c.status,
            ]
            if has_test:
                cells.append(_cell(c.test_accuracy, ".3f"))
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + f"\n\nValidator: {self.validator}. {self.reason}\n"

    def __str__(self):
        return self.summary()


def _cell(value, spec):
    return "-" if value is None else format(value, spec)


@dataclasses.dataclass(frozen=True)
class AdaptationResult:
    """What `select` and `adapt` return.

    Attributes:
        classifier: The chosen model's input -> logits `keras.Model`,
            compiled with the label loss and accuracy (`evaluate` works).
        model: The chosen trained model (an `AdaptationModel` for the
            built-in candidates).
        report: The `AdaptationReport`.
    """

    classifier: keras.Model
    model: keras.Model
    report: AdaptationReport


def _choose(results, margin, source_tolerance, collapse_ratio):
    """The selection rule; see `select`."""
    by_name = {c.name: c for c in results}
    base = by_name.get(BASELINE)
    if base is None or base.score is None:
        raise ValueError(
            "Invalid value received for argument `candidates`. The baseline "
            f"{BASELINE!r} must be among the candidates and train. Received: "
            f"{[c.name for c in results]}"
        )
    best, notes = None, []
    for c in results:
        if c.name == BASELINE:
            continue
        if c.score is None:
            notes.append(f"{c.name}: {c.status}")
        elif c.source_accuracy < base.source_accuracy - source_tolerance:
            notes.append(
                f"{c.name}: source accuracy {c.source_accuracy:.3f} < baseline "
                f"{base.source_accuracy:.3f} - {source_tolerance}"
            )
        elif c.target_class_share > collapse_ratio * base.target_class_share:
            notes.append(
                f"{c.name}: {c.target_class_share:.2f} of its target predictions in "
                f"one class > {collapse_ratio} x baseline {base.target_class_share:.2f}"
            )
        elif c.score <= base.score + margin:
            notes.append(
                f"{c.name}: score {c.score:.4f} <= baseline {base.score:.4f} + {margin}"
            )
        elif best is None or c.score > best.score:
            best = c
    if best is None:
        why = "; ".join(notes) if notes else "no other candidate"
        return (
            BASELINE,
            True,
            f"Fell back to {BASELINE}: no candidate was predicted to beat it ({why}).",
        )
    return (
        best.name,
        False,
        f"Chose {best.name}: score {best.score:.4f} > baseline {base.score:.4f} + "
        f"{margin}, source accuracy {best.source_accuracy:.3f} (baseline "
        f"{base.source_accuracy:.3f}); the best of the candidates that passed.",
    )


def _parse_candidates(candidates):
    """`[(name, builder, options)]` from names, `"name:key=value"` or a dict."""
    if isinstance(candidates, dict):
        items = list(candidates.items())
    elif isinstance(candidates, (list, tuple)) and candidates:
        items = [(spec, None) for spec in candidates]
    else:
        raise ValueError(
            "Invalid value received for argument `candidates`. Expected a "
            "non-empty list of names (e.g. 'dann', 'mcc:weight=0.3') or a dict "
            f"name -> builder. Received: candidates={candidates!r}"
        )
    parsed = []
    for spec, builder in items:
        if not isinstance(spec, str):
            raise ValueError(
                "Invalid value received for argument `candidates`. Expected "
                f"string names. Received: {spec!r}"
            )
        method, _, text = spec.partition(":")
        options = {}
        for option in filter(None, text.split(",")):
            key, _, value = option.partition("=")
            try:
                options[key] = float(value)
            except ValueError:
                raise ValueError(
                    f"Invalid value received for argument `candidates`: option "
                    f"{option!r} of {spec!r} is not key=number. Received: {spec!r}"
                ) from None
        if builder is None:
            if method != ADABN and method not in CANDIDATES:
                raise ValueError(
                    "Invalid value received for argument `candidates`: unknown "
                    f"method {method!r}. Available: {sorted([*CANDIDATES, ADABN])}. "
                    f"Received: {spec!r}"
                )
            builder = CANDIDATES.get(method)
        _check_options(spec, builder or _no_options, options)
        parsed.append((spec, method, builder, options))
    names = [spec for spec, *_ in parsed]
    if BASELINE not in names:
        parsed.insert(0, (BASELINE, BASELINE, CANDIDATES[BASELINE], {}))
    elif names[0] != BASELINE:
        parsed.insert(0, parsed.pop(names.index(BASELINE)))
    if len({spec for spec, *_ in parsed}) != len(parsed):
        raise ValueError(
            "Invalid value received for argument `candidates`: duplicate names. "
            f"Received: {names}"
        )
    return parsed


def _split(count, fraction, rng, label, num_classes):
    held = int(round(count * fraction))
    minimum = max(MIN_VALIDATION_ROWS, 2 * num_classes)
    if held < minimum or count - held < 2:
        raise ValueError(
            f"Invalid value received for argument `{label}`. The selector holds "
            f"out validation_fraction={fraction} of the {label} rows to score "
            f"the candidates and needs at least {minimum} held-out rows (and 2 "
            f"to train on). Received: {label} with {count} rows ({held} held "
            "out); pass more rows or a larger validation_fraction."
        )
    order = rng.permutation(count)
    return order[held:], order[:held]


def _value_range(x):
    low, high = float(np.min(x)), float(np.max(x))
    if low >= 0 and high <= 1:
        return (0.0, 1.0)
    if low >= 0 and high <= 255:
        return (0.0, 255.0)
    return (low, high)


def _two_class(logits):
    return np.concatenate([np.zeros_like(logits), logits], -1) if logits.shape[-1] == 1 else logits


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class _Scorer:
    """Everything a candidate is scored on, prepared once."""

    def __init__(self, data, batch_size, target_test):
        self.data = data
        self.batch_size = batch_size
        self.target_test = target_test

    def __call__(self, classifier):
        d = self.data
        parts = ["target_val", "source_val", "source_fit", "target_fit"]
        arrays = [d[part] for part in parts]
        if self.target_test is not None:
            arrays.append(self.target_test[0])
        # One predict call: a new input length would re-trace (TF) or
        # re-compile (JAX) the predict function.
        logits = classifier.predict(
            np.concatenate(arrays), batch_size=self.batch_size, verbose=0
        )
        logits = _two_class(np.asarray(logits, dtype="float64"))
        if not np.all(np.isfinite(logits)):
            return None
        pieces = dict(zip(parts + ["test"], np.split(logits, np.cumsum([len(a) for a in arrays])[:-1])))
        target_val, source_val = pieces["target_val"], pieces["source_val"]
        losses = -np.take_along_axis(
            _log_softmax(source_val), d["y_source_val"][:, None], axis=1
        )[:, 0]
        weights = importance_weights(pieces["source_fit"], pieces["target_fit"], source_val)
        counts = np.bincount(np.argmax(target_val, -1), minlength=target_val.shape[-1])
        scores = {
            "snd": snd_score(target_val),
            "dev_risk": dev_risk(losses, weights),
            "source_accuracy": float(np.mean(np.argmax(source_val, -1) == d["y_source_val"])),
            "target_class_share": float(counts.max() / counts.sum()),
        }
        if self.target_test is not None:
            y_test = np.asarray(self.target_test[1])
            scores["test_accuracy"] = float(np.mean(np.argmax(pieces["test"], -1) == y_test))
        return scores


def _output_classes(feature_extractor, label_head, input_shape):
    inputs, features = model_inputs(feature_extractor, input_shape)
    return int(label_head(features).shape[-1])


def select(
    feature_extractor,
    label_head,
    source,
    target,
    candidates=RECOMMENDED,
    *,
    validator=DEFAULT_VALIDATOR,
    epochs=30,
    batch_size=64,
    num_classes=None,
    optimizer=None,
    validation_fraction=0.2,
    margin=DEFAULT_MARGIN,
    source_tolerance=DEFAULT_SOURCE_TOLERANCE,
    collapse_ratio=DEFAULT_COLLAPSE_RATIO,
    budget=None,
    input_shape=None,
    seed=0,
    target_test=None,
    verbose=0,
):
    """Train candidate methods, score them without target labels, keep the best.

    Every candidate starts from the same initial weights (the extractor's
    and head's as passed, e.g. pretrained), trains on the same
    `paired_dataset` batches for `epochs` epochs, and is scored on rows
    held out of training:

    - the validator: DEV, its importance-weighted loss on held-out *source*
      rows (`"dev"`, lower is better; the score is `-risk`), or SND of its
      predictions on held-out *target* rows (`"snd"`, higher is better;
      measured to favour self-training that collapses, see
      `docs/domain_adaptation.md`);
    - its accuracy on the held-out source rows;
    - the largest share of one class among its held-out target predictions.

    The rule, with source-only (`"source_only"`, always trained first) as
    the baseline: a candidate qualifies when (1) its source accuracy is at
    most `source_tolerance` below the baseline's (it has not forgotten the
    task), (2) its top predicted-class share on the target is at most
    `collapse_ratio` times the baseline's (its predictions have not
    collapsed onto a few classes), and (3) its score beats the baseline's
    by more than `margin`; the best qualifying score wins. When none
    qualifies, the result **falls back to source-only** and the report says
    so and why. No target label is read; `target_test`, if given, is only
    evaluated for the report.

    Candidates are names from `keras_transfer.adaptation.selection.CANDIDATES`
    (`"source_only"`, `"dann"`, `"coral"`, `"mmd"`, `"entropy"`, `"mcc"`,
    `"fixmatch"`), `"adabn"` (source-only with BatchNormalization statistics
    re-estimated on the target, no extra training; skipped, and reported,
    when the model has no BatchNormalization), each optionally with options
    (`"dann:weight=0.1"` sets lambda, `"mcc:weight=0.3"` the loss weight,
    `"fixmatch:threshold=0.9"`), or a dict name -> builder
    `fn(feature_extractor, label_head, context, **options) -> model` (see
    `CandidateContext`).

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features.
            Its weights are reset to their values at the call before each
            candidate; on return they hold the chosen candidate's.
        label_head: A Keras layer or model mapping features to class logits.
        source: Tuple `(x, y)` of arrays, integer labels.
        target: Array of unlabelled target rows.
        candidates: List of candidate names or a dict (see above). Defaults
            to `keras_transfer.adaptation.selection.RECOMMENDED`.
        validator: `"dev"` or `"snd"`. Defaults to `"dev"`.
        epochs: Integer >= 1. Epochs per candidate. Defaults to `30`.
        batch_size: Even integer >= 2. Defaults to `64`.
        num_classes: Optional integer; defaults to the head's output width.
        optimizer: A `keras.optimizers.Optimizer` to copy for each candidate
            (from its config). Defaults to Adam with the DANN learning-rate
            annealing from 1e-3 (`keras_transfer.schedules.DANNDecay`).
        validation_fraction: Float in (0, 0.5]. Share of source and of
            target rows held out for scoring. Defaults to `0.2`.
        margin: Float >= 0. Score gain over source-only a candidate needs.
            Defaults to `0.0`.
        source_tolerance: Float in [0, 1]. Held-out source accuracy a
            candidate may lose against source-only. Defaults to `0.03`.
        collapse_ratio: Float >= 1. How much larger than source-only's a
            candidate's top predicted-class share on the held-out target
            rows may be. Defaults to `1.5`.
        budget: Optional integer >= 1: train at most this many candidates
            (source-only included), taken in the order given.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        seed: Integer. Splits, batch order and each candidate's random
            initialisation. Defaults to `0`.
        target_test: Optional `(x, y)` labelled target rows, evaluated for
            the report only (`CandidateResult.test_accuracy`).
        verbose: Integer. `fit` verbosity. Defaults to `0`.

    Returns:
        An `AdaptationResult`: `.classifier` (compiled), `.model`, `.report`.

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3))  # or a pretrained backbone
    head = keras.layers.Dense(10)
    result = keras_transfer.adaptation.select(
        features, head, (x_source[:100], y_source[:100]), x_target[:100],
        candidates=["dann:weight=0.1", "mcc"],  # source-only is the baseline, always
        epochs=1, batch_size=32)  # all rows and the default epochs=30 in real use
    print(result.report)  # tried, scores, choice and why
    result.classifier.evaluate(x_test, y_test)
    ```

    Reference:
        - [Saito et al., 2021](https://arxiv.org/abs/2108.10860) (SND)
        - [You et al., 2019](http://proceedings.mlr.press/v97/you19a.html) (DEV)
    """
    if validator not in VALIDATORS:
        raise ValueError(
            "Invalid value received for argument `validator`. Expected one of "
            f"{VALIDATORS}. Received: validator={validator!r}"
        )
    check_int("epochs", epochs, minimum=1)
    check_number("validation_fraction", validation_fraction, above=0, maximum=0.5)
    check_number("margin", margin, minimum=0)
    check_number("source_tolerance", source_tolerance, minimum=0, maximum=1)
    check_number("collapse_ratio", collapse_ratio, minimum=1)
    if budget is not None:
        check_int("budget", budget, minimum=1)
    parsed = _parse_candidates(candidates)
    if budget is not None:
        parsed = parsed[:budget]

    x_source, y_source = np.asarray(source[0]), np.asarray(source[1])
    x_target = np.asarray(target)
    head_classes = _output_classes(feature_extractor, label_head, input_shape)
    classes = max(head_classes, 2)
    if num_classes is not None and num_classes != classes:
        raise ValueError(
            "Invalid value received for argument `num_classes`. The label head "
            f"outputs {head_classes} logits. Received: num_classes={num_classes}"
        )
    if y_source.size and (y_source.min() < 0 or y_source.max() >= classes):
        raise ValueError(
            "Invalid value received for argument `source`. Labels must lie in "
            f"[0, {classes}) for a head with {head_classes} outputs. Received: "
            f"labels from {y_source.min()} to {y_source.max()}"
        )
    rng = np.random.default_rng(seed)
    source_fit, source_val = _split(len(x_source), validation_fraction, rng, "source", classes)
    target_fit, target_val = _split(len(x_target), validation_fraction, rng, "target", classes)
    data = {
        "source_fit": x_source[source_fit[:1000]],
        "target_fit": x_target[target_fit[:1000]],
        "source_val": x_source[source_val],
        "y_source_val": y_source[source_val].astype("int64"),
        "target_val": x_target[target_val],
    }
    score = _Scorer(data, 256, target_test)
    train_source = (x_source[source_fit], y_source[source_fit])
    train_target = x_target[target_fit]
    half = batch_size // 2
    steps = epochs * math.ceil(max(len(source_fit), len(target_fit)) / half)

    def make_optimizer():
        if optimizer is None:
            return keras.optimizers.Adam(DANNDecay(1e-3, total_steps=steps))
        return optimizer.__class__.from_config(optimizer.get_config())

    input_shape = input_shape or tuple(x_source.shape[1:])
    context = CandidateContext(
        input_shape, classes, steps, _value_range(x_source), make_optimizer
    )
    initial = _weights(feature_extractor, label_head)

    results, snapshots, models = [], {}, {}
    for spec, method, builder, options in parsed:
        if method == ADABN:
            results.append(
                _adabn(snapshots, models, score, train_target, validator, batch_size)
            )
            continue
        _restore(feature_extractor, label_head, initial)
        keras.utils.set_random_seed(seed)
        start = time.time()
        model = builder(feature_extractor, label_head, context, **dict(options))
        history = model.fit(
            paired_dataset(
                train_source, train_target, batch_size=batch_size,
                num_classes=classes, seed=seed,
            ),
            epochs=epochs,
            verbose=verbose,
        )
        seconds = time.time() - start
        losses = history.history.get("loss", [float("nan")])
        scores = score(model.classifier) if np.isfinite(losses[-1]) else None
        results.append(_result(spec, scores, validator, seconds))
        models[spec] = model
        snapshots[spec] = model.get_weights()

    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "validation_fraction": validation_fraction,
        "source_rows": [len(source_fit), len(source_val)],
        "target_rows": [len(target_fit), len(target_val)],
        "value_range": list(context.value_range),
        "seed": seed,
    }
    chosen, fell_back, reason = _choose(results, margin, source_tolerance, collapse_ratio)
    report = AdaptationReport(
        chosen, fell_back, reason, validator, margin, source_tolerance, collapse_ratio,
        tuple(results), settings,
    )
    # Leave the shared layers (and so every candidate model) with the winner's weights.
    winner = models[chosen if chosen in models else BASELINE]
    winner.set_weights(snapshots[chosen])
    return AdaptationResult(winner.classifier, winner, report)


def _weights(*parts):
    return [part.get_weights() for part in parts]


def _restore(feature_extractor, label_head, initial):
    for part, weights in zip((feature_extractor, label_head), initial):
        if weights:
            part.set_weights(weights)


def _result(name, scores, validator, seconds, status="ok"):
    if scores is None:
        return CandidateResult(
            name, None, None, None, None, None, seconds,
            status if status != "ok" else "diverged (non-finite loss or logits)",
        )
    value = scores["snd"] if validator == "snd" else -scores["dev_risk"]
    return CandidateResult(
        name, value, scores["snd"], scores["dev_risk"], scores["source_accuracy"],
        scores["target_class_share"], seconds, status, scores.get("test_accuracy"),
    )


def _adabn(snapshots, models, score, x_target, validator, batch_size):
    """Source-only + AdaBN on the target training rows, scored like the others."""
    if BASELINE not in models:
        return _result(ADABN, None, validator, 0.0, "skipped: needs source_only trained first")
    base = models[BASELINE]
    base.set_weights(snapshots[BASELINE])
    classifier = base.classifier
    if not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in _keras_compat.all_sublayers(classifier)
    ):
        return _result(ADABN, None, validator, 0.0, "skipped: no BatchNormalization layer")
    start = time.time()
    adapt_batch_norm(classifier, x_target, batch_size=max(batch_size, 128))
    snapshots[ADABN] = base.get_weights()
    models[ADABN] = base
    return _result(ADABN, score(classifier), validator, time.time() - start)


def adapt(
    feature_extractor,
    label_head,
    source,
    target,
    *,
    budget=None,
    epochs=30,
    batch_size=64,
    optimizer=None,
    input_shape=None,
    seed=0,
    target_test=None,
    verbose=0,
):
    """Domain adaptation you can start with: tries several methods, falls back when unsure.

    `select` with the recommended candidates and rule: source-only, AdaBN
    (when the model has BatchNormalization), MMD, MCC and DANN, each trained
    `epochs` epochs from the same initial weights; scored without target
    labels by DEV (importance-weighted held-out source loss), guarded by
    held-out source accuracy and by the class balance of the target
    predictions; the best one that passes is returned, else source-only
    itself (the report says which and why). Costs one training per
    candidate (four by default; AdaBN is free).

    Args:
        feature_extractor: A Keras model or layer mapping inputs to features
            (e.g. a pretrained backbone). On return it holds the chosen
            candidate's weights.
        label_head: A Keras layer or model mapping features to class logits.
        source: Tuple `(x, y)` of arrays, integer labels.
        target: Array of unlabelled target rows (at least 100: a fifth is
            held out to score the candidates).
        budget: Optional integer >= 1: how many candidates to take, in the
            order above (`1` = source-only only). Defaults to all.
        epochs: Integer >= 1. Epochs per candidate. Defaults to `30`.
        batch_size: Even integer >= 2. Defaults to `64`.
        optimizer: Optional optimizer to copy for each candidate. Defaults
            to Adam with the DANN annealing from 1e-3.
        input_shape: Tuple. Needed when the feature extractor has no input
            shape yet.
        seed: Integer. Defaults to `0`.
        target_test: Optional labelled `(x, y)` target rows: evaluated for
            the report only, never used to choose.
        verbose: Integer. `fit` verbosity. Defaults to `0`.

    Returns:
        An `AdaptationResult`: `.classifier` (compiled, ready to `evaluate`,
        `predict` or `keras_transfer.export`), `.model`, `.report`.

    Example:

    ```python
    x_source, y_source = keras_transfer.datasets.load_builtin("digits", "train", 16)
    x_target, _ = keras_transfer.datasets.load_builtin("digits-m", "train", 16)
    x_test, y_test = keras_transfer.datasets.load_builtin("digits-m", "test", 16)
    features = keras_transfer.models.cnn_features((16, 16, 3))  # or a pretrained backbone
    head = keras.layers.Dense(10)
    result = keras_transfer.adaptation.adapt(
        features, head, (x_source[:100], y_source[:100]), x_target[:100],
        budget=2, epochs=1, batch_size=32)  # source-only and AdaBN only, here
    print(result.report)                       # tried, scores, choice and why
    result.classifier.evaluate(x_test, y_test)
    ```
    """
    return select(
        feature_extractor,
        label_head,
        source,
        target,
        RECOMMENDED,
        budget=budget,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        input_shape=input_shape,
        seed=seed,
        target_test=target_test,
        verbose=verbose,
    )
