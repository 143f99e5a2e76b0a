"""Model selection without target labels: validators, the rule, `select`, `adapt`."""

import pathlib
import re

import keras
import numpy as np
import pytest

from keras_transfer import adaptation
from keras_transfer.adaptation import selection
from keras_transfer.adaptation import validators

# Numpy-only logic: tested on one backend.
once = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="backend-independent; runs on jax"
)


def _numpy_snd(logits, temperature=0.05):
    """Saito et al. 2021, one row at a time."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    f = p / np.linalg.norm(p, axis=1, keepdims=True)
    entropies = []
    for i in range(len(f)):
        others = [j for j in range(len(f)) if j != i]
        s = np.array([f[i] @ f[j] for j in others]) / temperature
        q = np.exp(s - s.max())
        q /= q.sum()
        entropies.append(-(q * np.log(q)).sum())
    return np.mean(entropies)


@once
def test_snd_equals_its_numpy_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 4)) * 2
    np.testing.assert_allclose(validators.snd_score(logits), _numpy_snd(logits), rtol=1e-10)
    np.testing.assert_allclose(
        validators.snd_score(logits, chunk_size=7), _numpy_snd(logits), rtol=1e-10
    )
    # Confident predictions, k equal clusters: each row's neighbourhood is
    # uniform over the other rows of its cluster, so SND = log(n / k - 1);
    # one cluster (every row one class) gives the maximum, log(n - 1).
    for k in (1, 3, 5):
        clustered = np.eye(5)[np.arange(30) % k] * 40
        np.testing.assert_allclose(validators.snd_score(clustered), np.log(30 / k - 1), rtol=1e-6)


@once
def test_dev_risk_equals_the_control_variate_formula():
    rng = np.random.default_rng(1)
    losses, weights = rng.gamma(2.0, size=50), rng.gamma(3.0, 1 / 3.0, size=50)
    weighted = losses * weights
    c = np.cov(np.stack([weighted, weights]))
    eta = -c[0, 1] / c[1, 1]
    expected = weighted.mean() + eta * weights.mean() - eta
    np.testing.assert_allclose(validators.dev_risk(losses, weights), expected, rtol=1e-12)
    # Weights all 1 (no shift): the plain mean loss.
    np.testing.assert_allclose(validators.dev_risk(losses, np.ones(50)), losses.mean())


@once
def test_importance_weights_follow_the_density_ratio():
    rng = np.random.default_rng(2)
    source = rng.normal(0.0, 1.0, size=(2000, 1))
    target = rng.normal(1.0, 1.0, size=(1000, 1))
    query = np.array([[-1.0], [0.5], [2.0]])
    # N(1, 1) / N(0, 1) = exp(x - 1/2).
    expected = np.exp(query[:, 0] - 0.5)
    np.testing.assert_allclose(
        validators.importance_weights(source, target, query), expected, rtol=0.15
    )


def _result(name, score, source_accuracy=0.9, share=0.2):
    return selection.CandidateResult(name, score, score, 1.0, source_accuracy, share, 0.0)


@once
def test_the_rule_picks_the_best_qualifying_candidate_or_falls_back():
    def choose(results, margin=0.0, tolerance=0.03):
        report = selection.AdaptationReport(
            "", False, "", "dev", margin, tolerance, 1.5, tuple(results), {}
        )
        return report.choice_among([r.name for r in results])

    base = _result("source_only", 1.0)
    chosen, fell_back, reason = choose(
        [
            base,
            _result("a", 1.2),
            _result("b", 1.5),
            _result("c", 2.0, source_accuracy=0.8),
            _result("d", 3.0, share=0.31),
        ]
    )
    assert (chosen, fell_back) == ("b", False)  # c forgot the source task, d collapsed
    chosen, fell_back, reason = choose([base, _result("d", 3.0, share=0.31)])
    assert (chosen, fell_back) == ("source_only", True)
    assert "d: 0.31 of its target predictions in one class > 1.5 x baseline 0.20" in reason
    chosen, fell_back, reason = choose([base, _result("a", 1.05)], margin=0.1)
    assert (chosen, fell_back) == ("source_only", True)
    assert "a: score 1.0500 <= baseline 1.0000 + 0.1" in reason
    failed = selection.CandidateResult("d", None, None, None, None, None, 0.0, "diverged")
    assert choose([base, failed])[:2] == ("source_only", True)


def _vector_data(n_source=120, n_target=100, d=6, classes=3):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(classes, d)) * 3
    y_source = np.arange(n_source) % classes
    x_source = (centres[y_source] + rng.normal(size=(n_source, d))).astype("float32")
    y_target = np.arange(n_target) % classes
    x_target = (centres[y_target] + rng.normal(size=(n_target, d)) + 1.0).astype("float32")
    return x_source, y_source, x_target, y_target


def _parts(d=6, classes=3):
    features = keras.Sequential(
        [keras.Input((d,)), keras.layers.Dense(8, activation="tanh")], name="features"
    )
    return features, keras.layers.Dense(classes, name="label_head")


def _untrained(features, head, context, **options):
    """A deliberately worse candidate: nothing learns from the labels."""
    model = adaptation.build_source_only(
        features, head, optimizer=keras.optimizers.SGD(0.0), input_shape=context.input_shape
    )
    return model


def test_select_falls_back_to_source_only_when_a_candidate_is_worse():
    x_source, y_source, x_target, y_target = _vector_data()
    features, head = _parts()
    candidates = {
        "source_only": selection.CANDIDATES["source_only"],
        "worse": _untrained,
        "same": selection.CANDIDATES["source_only"],
    }
    result = adaptation.select(
        features, head, (x_source, y_source), x_target, candidates,
        epochs=4, batch_size=16, optimizer=keras.optimizers.Adam(0.05),
        target_test=(x_target, y_target),
    )
    report = result.report
    assert report.chosen == "source_only" and report.fell_back
    assert "Fell back to source_only" in report.reason
    assert "worse: source accuracy" in report.reason  # below the baseline's
    assert "same: score" in report.reason  # equal, so no predicted gain
    worse, base = report.result("worse"), report.result("source_only")
    assert worse.source_accuracy < base.source_accuracy - 0.03
    assert report.settings["target_rows"] == [80, 20]
    # The returned classifier is source-only's, compiled, and the test
    # accuracy in the report is its own.
    _, accuracy = result.classifier.evaluate(x_target, y_target, verbose=0)
    np.testing.assert_allclose(accuracy, base.test_accuracy, atol=1e-6)
    assert "source_only **(chosen)**" in report.summary()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": np.zeros((40, 6), "float32")}, r"target.*at least 20 held-out rows"),
        ({"candidates": ["dann:weight=-1"]}, r"weight.*Received: weight=-1"),
        ({"candidates": ["mcc:temperature=2"]}, "takes no option"),
        ({"candidates": ["nope"]}, "unknown method 'nope'"),
        ({"num_classes": 5}, r"num_classes.*3 logits.*Received: num_classes=5"),
        ({"labels": np.arange(120) % 4}, r"Labels must lie in \[0, 3\)"),
        ({"validator": "oracle"}, "validator"),
    ],
)
def test_select_bad_input_names_the_value(kwargs, match):
    x_source, y_source, x_target, _ = _vector_data()
    features, head = _parts()
    with pytest.raises(ValueError, match=match):
        adaptation.select(
            features, head, (x_source, kwargs.pop("labels", y_source)),
            kwargs.pop("target", x_target), **{"epochs": 1, **kwargs},
        )


def _readme_snippet():
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("### Domain adaptation") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_domain_adaptation_snippet_runs_as_written(capsys, monkeypatch):
    """The README's code as written; only the epochs and candidates are fewer (CI time)."""
    monkeypatch.setitem(selection.adapt.__kwdefaults__, "epochs", 1)
    monkeypatch.setattr(selection, "RECOMMENDED", ("source_only",))
    code = _readme_snippet()
    assert "epochs=20" in code
    x_source, y_source, x_target, y_target = _vector_data()
    features, label_head = _parts()
    namespace = {
        "features": features, "label_head": label_head,
        "x_source": x_source, "y_source": y_source, "x_target": x_target,
        "x_test": x_target, "y_test": y_target,
    }
    exec(code.replace("epochs=20", "epochs=1"), namespace)
    assert "Validator: dev" in capsys.readouterr().out
    assert isinstance(namespace["result"], adaptation.AdaptationResult)
    assert [c.name for c in namespace["result"].report.candidates] == ["source_only"]
