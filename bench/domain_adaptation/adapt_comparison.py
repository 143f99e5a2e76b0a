"""ADAPT's DANN on the same shifts, rows and model as `run.py`.

ADAPT (https://github.com/adapt-python/adapt) is TF-only and written against
`tf.keras` 2, so it runs in its own environment with the legacy Keras:

    python -m venv .adapt-venv
    echo "$(python -c 'import site; print(site.getsitepackages()[0])')" \\
        > .adapt-venv/lib/python3.11/site-packages/_parent.pth   # reuse TF etc.
    .adapt-venv/bin/pip install --no-deps adapt==0.4.5 scikeras cvxopt "tf_keras~=2.21.0"
    TF_USE_LEGACY_KERAS=1 .adapt-venv/bin/python bench/domain_adaptation/adapt_comparison.py

Same data as `run.py`: `load_builtin` at 16 px, and for each seed the same
rows `keras_transfer.adaptation.select` trains on (a fifth of the source and
of the target train rows held out, drawn as `select` draws them); the
target test split for accuracy. Same encoder (per-image standardisation,
conv 16-32 5x5 ReLU, max pooling, dense 128 tanh), linear softmax head, 15
epochs of 32 source + 32 target rows, Adam 1e-3 (ADAPT's constant rate).
ADAPT's DANN with its default `lambda_=0.1` (`dann`), `lambda_=1`
(`dann:lambda=1`), and `lambda_=0` as its source-only. ADAPT's discriminator
is given as one hidden layer of 100 (it has no default).

Writes the `shifts` of `bench/domain_adaptation/results/adapt.json` (keeping
its `configs`) and regenerates the benchmark README.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHIFTS = (
    "digits-m",
    "digits-rotated",
    "digits-noisy",
    "digits-colored",
    "digits-combined",
    "digits-sensor",
)


def select_rows(n_source, n_target, seed, fraction=0.2):
    """The training rows `keras_transfer.adaptation.select` uses for `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for count in (n_source, n_target):
        held = int(round(count * fraction))
        rows.append(rng.permutation(count)[held:])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 1.0])
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS))
    args = parser.parse_args()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("Run with TF_USE_LEGACY_KERAS=1 (ADAPT needs tf.keras 2); see the docstring.")

    import numpy as np
    import tensorflow as tf
    from adapt.feature_based import DANN

    sys.path.insert(0, str(HERE.parents[1]))
    from keras_transfer.datasets.builtin import load_builtin

    keras = tf.keras
    x_source_all, y_source_all = load_builtin("digits", "train", image_size=16)

    def standardize(images):
        mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
        std = tf.math.reduce_std(images, axis=(1, 2, 3), keepdims=True)
        return (images - mean) / (std + 1e-3)

    def encoder():
        return keras.Sequential([
            keras.layers.Lambda(standardize, input_shape=(16, 16, 3)),
            keras.layers.Conv2D(16, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="tanh"),
        ])

    names = {0.0: "source_only", 0.1: "dann"}
    shifts = {}
    for shift in args.shifts:
        x_target_all, _ = load_builtin(shift, "train", image_size=16)
        x_test, y_test = load_builtin(shift, "test", image_size=16)
        results = shifts[shift] = {}
        for lambda_ in args.lambdas:
            accuracies = []
            for seed in range(args.seeds):
                source_rows, target_rows = select_rows(len(x_source_all), len(x_target_all), seed)
                tf.keras.utils.set_random_seed(seed)
                model = DANN(
                    encoder(),
                    keras.Sequential([keras.layers.Dense(10, activation="softmax")]),
                    keras.Sequential([
                        keras.layers.Dense(100, activation="relu"),
                        keras.layers.Dense(1, activation="sigmoid"),
                    ]),
                    Xt=x_target_all[target_rows].astype("float32"),
                    lambda_=lambda_,
                    loss="categorical_crossentropy",  # ADAPT reshapes predictions to y
                    optimizer=keras.optimizers.Adam(1e-3),
                    random_state=seed,
                    verbose=0,
                )
                one_hot = np.eye(10, dtype="float32")[y_source_all[source_rows]]
                model.fit(
                    x_source_all[source_rows].astype("float32"), one_hot,
                    epochs=args.epochs, batch_size=32, verbose=0,
                )
                predictions = model.predict(x_test.astype("float32"), verbose=0)
                accuracies.append(float(np.mean(np.argmax(predictions, -1) == y_test)))
                print(f"adapt {shift} lambda={lambda_:g} seed={seed} acc={accuracies[-1]:.3f}", flush=True)
            results[names.get(lambda_, f"dann:lambda={lambda_:g}")] = {
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies)),
                "accuracies": accuracies,
            }
    from importlib.metadata import version

    path = RESULTS / "adapt.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(
        adapt=version("adapt"),
        tensorflow=tf.__version__,
        description=(
            "ADAPT's DANN (`dann`: its default lambda_=0.1; lambda_=0 as source-only), "
            f"{args.seeds} seeds, {args.epochs} epochs, the rows select() trains on; "
            "`python bench/domain_adaptation/adapt_comparison.py` (tf_keras venv)."
        ),
        shifts={**existing.get("shifts", {}), **shifts},
    )
    path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")
    # The README is written by run.py (Keras 3), in a separate process.
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.call([sys.executable, str(HERE / "run.py"), "--readme-only"], env=env)


if __name__ == "__main__":
    main()
