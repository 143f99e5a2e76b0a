import keras
import numpy as np
import pytest

import keras_transfer
from keras_transfer import ranking
from keras_transfer.datasets import load_builtin
from keras_transfer.models import cnn_features


def _reference_logme(features, labels, tolerance=0.01, max_iterations=11):
    """The paper's Algorithm 1 per class with plain matrix inverses (no SVD).

    Stops as the authors' code does: alpha / beta changes by < 1%, or 11 steps.
    """
    f = np.asarray(features, "float64")
    n, d = f.shape
    sigma = np.linalg.eigvalsh(f.T @ f)
    evidences = []
    for k in np.unique(labels):
        y = (labels == k).astype("float64")
        alpha, beta = 1.0, 1.0
        for _ in range(max_iterations):
            a = alpha * np.eye(d) + beta * f.T @ f
            m = beta * np.linalg.solve(a, f.T @ y)
            gamma = np.sum(beta * sigma / (alpha + beta * sigma))
            squared_error = np.sum((f @ m - y) ** 2)
            new_alpha, new_beta = gamma / (m @ m), (n - gamma) / squared_error
            converged = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < tolerance
            alpha, beta = new_alpha, new_beta
            if converged:
                break
        evidence = (
            d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * squared_error - alpha / 2 * m @ m
            - np.linalg.slogdet(alpha * np.eye(d) + beta * f.T @ f)[1] / 2
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


@pytest.mark.parametrize("n, d", [(200, 16), (30, 64)])
def test_logme_matches_the_reference_fixed_point_iteration(n, d):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, n)
    features = rng.normal(size=(n, d)) + 0.8 * labels[:, None] * rng.normal(size=(1, d))
    ours = ranking.logme(features, labels)
    assert ours == pytest.approx(_reference_logme(features, labels), abs=1e-5)
    tight = ranking.logme(features, labels, tolerance=1e-6, max_iterations=200)
    assert tight == pytest.approx(_reference_logme(features, labels, 1e-6, 200), abs=1e-5)


def test_logme_prefers_features_that_carry_the_labels():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    noise = rng.normal(size=(300, 8))
    informative = noise + 2.0 * np.eye(3, 8)[labels]
    assert ranking.logme(informative, labels) > ranking.logme(noise, labels)


def test_h_score_by_hand():
    labels = np.array([0, 0, 1, 1])
    # Features equal to the class: the class means explain all the variance.
    assert ranking.h_score(np.array([[0.0], [0.0], [1.0], [1.0]]), labels) == pytest.approx(1.0)
    # Variance 0.5, of which the class means explain 0.25.
    assert ranking.h_score(np.array([[0.0], [1.0], [1.0], [2.0]]), labels) == pytest.approx(0.5)


def test_a_pretrained_cnn_ranks_above_the_same_cnn_with_random_weights():
    x_train, y_train = load_builtin("digits", "train", image_size=16)
    x_test, y_test = load_builtin("digits", "test", image_size=16)
    keras.utils.set_random_seed(0)
    pretrained = cnn_features((16, 16, 3), (8, 16), name="pretrained")
    inputs = keras.Input((16, 16, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(10)(pretrained(inputs)))
    classifier.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    classifier.fit(x_train, y_train, batch_size=64, epochs=4, verbose=0)
    random = cnn_features((16, 16, 3), (8, 16), name="random")

    table = keras_transfer.rank([random, pretrained], (x_test, y_test))
    assert table.best == "pretrained"
    assert [row.name for row in table] == ["pretrained", "random"]
    assert table[0].logme > table[1].logme
    assert table[0].feature_dim == 16 and table[0].extract_seconds > 0
    assert "| pretrained |" in str(table)
    by_h_score = keras_transfer.rank({"a": random, "b": pretrained}, (x_test, y_test), metric="h_score")
    assert by_h_score.best == "b"


def test_bad_input_is_refused_with_the_value():
    features = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"at least 2 classes.*\[1\]"):
        ranking.logme(features, np.ones(4, int))
    with pytest.raises(ValueError, match="differ in length.*4 feature rows, 3 labels"):
        ranking.h_score(features, np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="integer class indices"):
        ranking.logme(features, np.array([0.0, 1.0, 0.0, 1.0]))
    backbone = cnn_features((8, 8, 3), (4,))
    images = np.zeros((4, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match="at least 2 classes"):
        keras_transfer.rank([backbone], (images, np.zeros(4, int)))
    with pytest.raises(ValueError, match="differ in length"):
        keras_transfer.rank([backbone], (images, np.array([0, 1])))
    with pytest.raises(ValueError, match="metric"):
        keras_transfer.rank([backbone], (images, np.array([0, 1, 0, 1])), metric="leep")
    with pytest.raises(ValueError, match="two backbones are named"):
        keras_transfer.rank([backbone, backbone], (images, np.array([0, 1, 0, 1])))
