"""Transferability estimation: rank candidate backbones for a dataset without fine-tuning.

Each candidate runs once over the labelled target data
(`keras_transfer.features.extract`); a score computed from its features and
the labels predicts how well it will transfer. LogME (You et al., 2021) is
the default; H-score (Bao et al., 2019) is computed beside it.
"""

import dataclasses
import time

import numpy as np

from keras_transfer import features as feature_cache

_METRICS = ("logme", "h_score")


def logme(features, labels, *, tolerance=0.01, max_iterations=11):
    """LogME: the mean log marginal evidence of labels given features.

    For every class `k`, a Bayesian linear model `y_k = F w + noise` with
    prior `w ~ N(0, 1/alpha)` and noise `N(0, 1/beta)` is fitted by the
    paper's fixed-point iteration, here in the eigenbasis of `F^T F`
    (`sigma`: its eigenvalues, `z = U^T y_k` for the SVD `F = U S V^T`),
    starting from `alpha = beta = 1`:

    ```python
    lam = alpha / beta
    m = S * z / (sigma + lam)                 # posterior mean of w, in V's basis
    gamma = sum(sigma / (sigma + lam))
    alpha = gamma / (m @ m)
    beta = (n - gamma) / ||F w - y_k||^2
    ```

    It stops as the authors' code does: once `alpha / beta` changes by less
    than `tolerance` (relative), or after `max_iterations`. (Where the
    features carry nothing about a class, `alpha` grows without bound and
    the evidence tends to its limit; the cap fixes where it is read.) The
    evidence of class `k` is
    `d/2 log alpha + n/2 log beta - n/2 log 2 pi - beta/2 ||F w - y_k||^2
    - alpha/2 ||w||^2 - 1/2 log det(alpha I + beta F^T F)`; LogME is its
    mean over classes, divided by `n`. Higher is better.

    Args:
        features: Array `(n, d)`.
        labels: Integer array `(n,)` with at least 2 distinct classes.
        tolerance: Float. Relative change of `alpha / beta` at which the
            iteration stops. Defaults to `0.01`, as the authors' code.
        max_iterations: Integer. Defaults to `11`, as the authors' code.

    Returns:
        Float, the LogME score.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, size=100)
    >>> informative = np.eye(3)[labels] + 0.3 * rng.normal(size=(100, 3))
    >>> noise = rng.normal(size=(100, 3))
    >>> keras_transfer.ranking.logme(informative, labels) > (
    ...     keras_transfer.ranking.logme(noise, labels))
    True

    Reference:
        - [You et al., 2021](https://arxiv.org/abs/2102.11005)
    """
    f, targets = _check(features, labels)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    s = s[:, None]
    sigma = s**2
    z = u.T @ targets  # (rank, classes)
    outside = np.maximum((targets**2).sum(0) - (z**2).sum(0), 0.0)  # ||y||^2 off F's span
    classes = targets.shape[1]
    lam = np.ones(classes)
    alpha, beta, m2, residual = (np.zeros(classes) for _ in range(4))
    active = np.ones(classes, bool)
    tiny = np.finfo("float64").tiny
    for _ in range(max_iterations):
        m = s * z / (sigma + lam)
        step_m2 = (m**2).sum(0)
        step_residual = ((s * m - z) ** 2).sum(0) + outside
        gamma = (sigma / (sigma + lam)).sum(0)
        step_alpha = gamma / np.maximum(step_m2, tiny)
        step_beta = (n - gamma) / np.maximum(step_residual, tiny)
        for kept, new in ((alpha, step_alpha), (beta, step_beta), (m2, step_m2), (residual, step_residual)):
            kept[active] = new[active]
        new_lam = alpha / beta
        active &= np.abs(new_lam - lam) / lam >= tolerance
        lam = np.where(active, new_lam, lam)
        if not active.any():
            break
    log_det = np.log(alpha + beta * sigma).sum(0) + (d - len(s)) * np.log(alpha)
    evidence = (
        d / 2 * np.log(alpha)
        + n / 2 * np.log(beta)
        - n / 2 * np.log(2 * np.pi)
        - beta / 2 * residual
        - alpha / 2 * m2
        - log_det / 2
    )
    return float(np.mean(evidence / n))


def h_score(features, labels):
    """H-score: how much of the features' variance the class means explain.

    ```python
    H = trace(pinv(cov(F)) @ cov(E[F | y]))
    ```

    Higher is better; it is at most the number of classes minus one.

    Args:
        features: Array `(n, d)`.
        labels: Integer array `(n,)` with at least 2 distinct classes.

    Returns:
        Float, the H-score.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, size=100)
    >>> informative = np.eye(3)[labels] + 0.3 * rng.normal(size=(100, 3))
    >>> noise = rng.normal(size=(100, 3))
    >>> keras_transfer.ranking.h_score(informative, labels) > (
    ...     keras_transfer.ranking.h_score(noise, labels))
    True

    Reference:
        - [Bao et al., 2019](https://doi.org/10.1109/ICIP.2019.8803726),
          "An Information-Theoretic Approach to Transferability in Task
          Transfer Learning"
    """
    f, targets = _check(features, labels)
    f = f - f.mean(0)
    class_means = (targets.T @ f) / targets.sum(0)[:, None]
    g = targets @ class_means  # each row replaced by its class mean
    covariance = f.T @ f / len(f)
    between = g.T @ g / len(f)
    return float(np.trace(np.linalg.pinv(covariance, hermitian=True) @ between))


@dataclasses.dataclass(frozen=True)
class RankedBackbone:
    """One row of a `Ranking`.

    Attributes:
        name: String, the candidate's name.
        logme: Float, `keras_transfer.ranking.logme` of its features.
        h_score: Float, `keras_transfer.ranking.h_score` of its features.
        feature_dim: Integer, the width of its features.
        extract_seconds: Float, time to extract (or read back) its features.
        score_seconds: Float, time to compute both scores.
    """

    name: str
    logme: float
    h_score: float
    feature_dim: int
    extract_seconds: float
    score_seconds: float


class Ranking(tuple):
    """`RankedBackbone` rows, best first; prints as a markdown table."""

    @property
    def best(self):
        """The name of the best candidate."""
        return self[0].name

    def __str__(self):
        fields = [f.name for f in dataclasses.fields(RankedBackbone)]
        lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
        for row in self:
            cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in dataclasses.astuple(row)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def rank(candidates, data, *, metric="logme", batch_size=64, cache_dir=None):
    """Ranks candidate backbones by the transferability of their features.

    Each candidate runs once over `data` (in inference mode, as in
    `keras_transfer.features.extract`); its features are scored with LogME
    and H-score, and the candidates are sorted by `metric`, best first.

    Args:
        candidates: A dict `{name: backbone}` or a list of backbones (named
            after `backbone.name`). A backbone is a `keras.Model` from raw
            inputs to pooled features `(batch, d)` or a
            `keras_transfer.backbones.Backbone` loaded with `pooling="avg"`.
        data: Labelled target data: `(x, y)` arrays or batches of `(x, y)`,
            as `keras_transfer.features.extract` takes. At least 2 classes.
        metric: `"logme"` or `"h_score"`, the sort key. Defaults to
            `"logme"`.
        batch_size: Integer. Extraction batch size for arrays. Defaults to
            `64`.
        cache_dir: String, path or `None`. Keep each candidate's features in
            `<cache_dir>/<name>` so a second ranking reads them back.

    Returns:
        A `keras_transfer.ranking.Ranking`: a tuple of `RankedBackbone`,
        best first, that prints as a table.

    Example:

    >>> x, y = keras_transfer.datasets.load_builtin("digits", "train")
    >>> # In real use: {"resnet50": keras_transfer.load_backbone("resnet50"),
    >>> #               "efficientnetb0": ...}, pretrained.
    >>> ranking = keras_transfer.rank(
    ...     {"narrow": keras_transfer.models.cnn_features((32, 32, 3), (4,)),
    ...      "wide": keras_transfer.models.cnn_features((32, 32, 3), (32,))},
    ...     (x[:64], y[:64]))
    >>> print(ranking)  # a markdown table, best first
    >>> ranking.best

    Reference:
        - [You et al., 2021](https://arxiv.org/abs/2102.11005) (LogME)
    """
    if metric not in _METRICS:
        raise ValueError(
            f"Invalid value received for argument `metric`. Expected one of "
            f"{list(_METRICS)}. Received: metric={metric!r}"
        )
    named = _named(candidates)
    if isinstance(data, tuple) and len(data) == 2:
        _check_labels(np.asarray(data[1]), len(np.asarray(data[0])))
    rows = []
    for name, backbone in named.items():
        start = time.perf_counter()
        folder = None if cache_dir is None else f"{cache_dir}/{name}"
        cached = feature_cache.extract(backbone, data, cache_dir=folder, batch_size=batch_size)
        features, labels = cached.arrays()
        extracted = time.perf_counter()
        if labels is None:
            raise ValueError(
                "Invalid value received for argument `data`: ranking needs labels. "
                "Pass (x, y) arrays or batches of (x, y)."
            )
        if features.ndim != 2:
            raise ValueError(
                f"Invalid value received for argument `candidates`: {name!r} "
                f"returns features of shape {features.shape[1:]}; ranking needs "
                "pooled features (batch, d). Load it with pooling='avg'."
            )
        scores = {"logme": logme(features, labels), "h_score": h_score(features, labels)}
        rows.append(
            RankedBackbone(
                name=name,
                **scores,
                feature_dim=features.shape[1],
                extract_seconds=extracted - start,
                score_seconds=time.perf_counter() - extracted,
            )
        )
    return Ranking(sorted(rows, key=lambda row: getattr(row, metric), reverse=True))


def _named(candidates):
    if isinstance(candidates, dict):
        named = dict(candidates)
    elif isinstance(candidates, (list, tuple)):
        named = {}
        for backbone in candidates:
            name = getattr(getattr(backbone, "feature_model", backbone), "name", None)
            if name in named:
                raise ValueError(
                    "Invalid value received for argument `candidates`: two "
                    f"backbones are named {name!r}. Pass a dict {{name: backbone}}."
                )
            named[name] = backbone
    else:
        named = {}
    if len(named) < 1 or not all(isinstance(name, str) and name for name in named):
        raise ValueError(
            "Invalid value received for argument `candidates`. Expected a "
            "non-empty dict {name: backbone} or list of named backbones. "
            f"Received: candidates={candidates!r}"
        )
    return named


def _check_labels(labels, count):
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "Invalid value received for argument `labels`: expected integer class "
            f"indices of shape (n,). Received: labels of shape {labels.shape} and "
            f"dtype {labels.dtype}"
        )
    if len(labels) != count:
        raise ValueError(
            "Invalid value received for argument `labels`: features and labels "
            f"differ in length. Received: {count} feature rows, {len(labels)} labels"
        )
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(
            "Invalid value received for argument `labels`: transferability needs "
            f"at least 2 classes. Received: labels with classes {classes.tolist()}"
        )
    return classes


def _check(features, labels):
    """Float64 features `(n, d)` and one-hot targets `(n, classes)`."""
    f = np.asarray(features, dtype="float64")
    labels = np.asarray(labels)
    if f.ndim != 2:
        raise ValueError(
            "Invalid value received for argument `features`: expected an array "
            f"(n, d). Received: features of shape {f.shape}"
        )
    classes = _check_labels(labels, len(f))
    return f, (labels[:, None] == classes[None, :]).astype("float64")
