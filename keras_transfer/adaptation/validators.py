"""Scoring an adapted model without target labels: SND and DEV.

Both read what any classifier gives (its logits), so they score every
method alike, including ones whose features are not reachable (a
generative model's classifier):

- `snd_score` (Saito et al. 2021, https://arxiv.org/abs/2108.10860): soft
  neighbourhood density of the target predictions. Higher is better.
- `dev_risk` (You et al. 2019, http://proceedings.mlr.press/v97/you19a.html):
  deep embedded validation, the source validation loss re-weighted by the
  density ratio target/source (`importance_weights`) with a control
  variate. Lower is better.

Numpy only: they run after training, on arrays.
"""

import numpy as np

from keras_transfer._validation import check_number


def _softmax(logits, axis=-1):
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def _as_matrix(name, value, min_rows):
    array = np.asarray(value, dtype="float64")
    if array.ndim != 2 or len(array) < min_rows or not np.all(np.isfinite(array)):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected a finite "
            f"2D array with at least {min_rows} rows. Received: {name} with "
            f"shape {array.shape}"
        )
    return array


def snd_score(logits, temperature=0.05, from_logits=True, chunk_size=1024):
    """Soft neighbourhood density (SND) of target predictions; higher is better.

    ```python
    p = softmax(logits)                        # (n, C) target predictions
    f = p / ||p||                              # L2-normalised rows
    s = f @ f.T / temperature                  # cosine similarities
    s[i, i] = -inf                             # a row is not its own neighbour
    q = softmax(s, axis=1)                     # soft neighbourhood of each row
    snd = mean_i(-sum_j q[i, j] * log(q[i, j]))
    ```

    A model whose target predictions form dense, well separated clusters
    has each row's neighbourhood spread over many similar rows (high
    entropy); predictions scattered between classes give peaked, uneven
    neighbourhoods (low entropy). Saito et al. pick hyper-parameters by it.

    Args:
        logits: Array `(n, num_classes)`, `n >= 3`: class logits (or
            probabilities with `from_logits=False`) of unlabelled target rows.
        temperature: Float > 0. Defaults to `0.05` (the paper's value).
        from_logits: Boolean. Whether to apply a softmax first. Defaults to
            `True`.
        chunk_size: Integer. Rows per block of the `n x n` similarity matrix
            (memory). Defaults to `1024`.

    Returns:
        Float, the mean neighbourhood entropy in nats (at most `log(n - 1)`).

    Reference:
        - [Saito et al., 2021](https://arxiv.org/abs/2108.10860)
    """
    check_number("temperature", temperature, above=0)
    probabilities = _as_matrix("logits", logits, 3)
    if from_logits:
        probabilities = _softmax(probabilities)
    features = probabilities / np.maximum(
        np.linalg.norm(probabilities, axis=1, keepdims=True), 1e-12
    )
    entropies = []
    for start in range(0, len(features), chunk_size):
        similarity = features[start : start + chunk_size] @ features.T / temperature
        rows = np.arange(len(similarity))
        similarity[rows, start + rows] = -np.inf
        neighbours = _softmax(similarity, axis=1)
        log_neighbours = np.log(np.where(neighbours > 0, neighbours, 1.0))
        entropies.append(-(neighbours * log_neighbours).sum(axis=1))
    return float(np.mean(np.concatenate(entropies)))


def _fit_logistic(x, y, l2, steps):
    """L2-regularised logistic regression by Newton's method; `(w, b)`."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    weights = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # The bias is not regularised.
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ weights, -30, 30)))
        gradient = design.T @ (p - y) / len(x) + penalty @ weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design / len(x) + penalty
        weights = weights - np.linalg.solve(hessian + 1e-9 * np.eye(len(weights)), gradient)
    return weights[:-1], weights[-1]


def importance_weights(source, target, query, l2=1e-2, steps=25):
    """Density ratio `p_target(x) / p_source(x)` at `query`, by a domain classifier.

    A logistic regression tells source rows (label 0) from target rows
    (label 1) on standardised features; with `d(x)` its target probability,

    ```python
    w(x) = d(x) / (1 - d(x)) * n_source / n_target
    ```

    (the DEV paper trains an MLP for `d`; a linear model is enough for the
    low-dimensional logits scored here, and has no seed).

    Args:
        source: Array `(n_s, d)` of source features (the query rows excluded).
        target: Array `(n_t, d)` of target features.
        query: Array `(m, d)`: the rows to weigh (source validation rows).
        l2: Float > 0. Ridge penalty of the logistic regression. Defaults to
            `1e-2`.
        steps: Integer. Newton steps. Defaults to `25`.

    Returns:
        Float64 array `(m,)` of weights.
    """
    check_number("l2", l2, above=0)
    source = _as_matrix("source", source, 2)
    target = _as_matrix("target", target, 2)
    query = _as_matrix("query", query, 1)
    both = np.concatenate([source, target])
    mean, std = both.mean(axis=0), both.std(axis=0) + 1e-8
    w, b = _fit_logistic(
        (both - mean) / std,
        np.concatenate([np.zeros(len(source)), np.ones(len(target))]),
        l2,
        steps,
    )
    log_odds = np.clip((query - mean) / std @ w + b, -30, 30)
    return np.exp(log_odds) * len(source) / len(target)


def dev_risk(losses, weights):
    """Deep embedded validation risk; lower is better.

    The importance-weighted source validation loss with a control variate
    (the weights have known mean 1), which cuts its variance:

    ```python
    weighted = weights * losses
    eta = -cov(weighted, weights) / var(weights)
    risk = mean(weighted) + eta * mean(weights) - eta
    ```

    Args:
        losses: Array `(m,)`: per-row loss on held-out labelled source rows.
        weights: Array `(m,)`: their density ratios target/source
            (`keras_transfer.adaptation.validators.importance_weights`).

    Returns:
        Float, the estimated target risk.

    Reference:
        - [You et al., 2019](http://proceedings.mlr.press/v97/you19a.html)
    """
    losses = np.asarray(losses, dtype="float64").reshape(-1)
    weights = np.asarray(weights, dtype="float64").reshape(-1)
    if len(losses) != len(weights) or len(losses) < 2:
        raise ValueError(
            "Invalid value received for arguments `losses` and `weights`. "
            "Expected two arrays of the same length >= 2. Received: "
            f"len(losses)={len(losses)}, len(weights)={len(weights)}"
        )
    weighted = weights * losses
    variance = np.var(weights, ddof=1)
    eta = 0.0 if variance == 0 else -np.cov(weighted, weights)[0, 1] / variance
    return float(np.mean(weighted) + eta * np.mean(weights) - eta)
