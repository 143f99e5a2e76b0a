"""ADAPT's DANN on the same digits -> digits-m data and model as our benchmark.

ADAPT (https://github.com/adapt-python/adapt) is TF-only and written against
`tf.keras` 2, so it runs in its own environment with the legacy Keras:

    python -m venv --system-site-packages .adapt-venv
    .adapt-venv/bin/pip install adapt scikeras cvxopt "tf_keras~=2.21.0"
    TF_USE_LEGACY_KERAS=1 .adapt-venv/bin/python bench/adapt_comparison.py

Same data (`load_builtin`, 16 px), same encoder as `bench/domain_adaptation.py`
(per-image standardisation, conv 32-48 5x5, max pooling, dense 128 tanh; the
first activation ReLU or |x| with `--first-activation abs`), linear task head,
discriminator 100 relu -> 1 sigmoid, Adam 1e-3, 40 epochs of 32 source + 32
target rows. Source-only is ADAPT's DANN with `lambda_=0`. Writes
`bench/results/adapt_comparison[_abs].json` and prints the accuracies.
"""

import argparse
import json
import os
import pathlib
import sys

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 1.0])
    parser.add_argument("--first-activation", choices=("relu", "abs"), default="relu")
    args = parser.parse_args()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("Run with TF_USE_LEGACY_KERAS=1 (ADAPT needs tf.keras 2); see the docstring.")

    import numpy as np
    import tensorflow as tf
    from adapt.feature_based import DANN

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from keras_transfer.datasets.builtin import load_builtin

    keras = tf.keras
    x_source, y_source = load_builtin("digits", "train", image_size=16)
    x_target, _ = load_builtin("digits-m", "train", image_size=16)
    x_test, y_test = load_builtin("digits-m", "test", image_size=16)
    x_source, x_target, x_test = (x.astype("float32") for x in (x_source, x_target, x_test))

    def standardize(images):
        mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
        std = tf.math.reduce_std(images, axis=(1, 2, 3), keepdims=True)
        return (images - mean) / (std + 1e-3)

    def encoder():
        first = tf.abs if args.first_activation == "abs" else "relu"
        return keras.Sequential([
            keras.layers.Lambda(standardize, input_shape=(16, 16, 3)),
            keras.layers.Conv2D(32, 5, padding="same", activation=first),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(48, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="tanh"),
        ])

    results = {}
    for lambda_ in args.lambdas:
        accuracies = []
        for seed in range(args.seeds):
            tf.keras.utils.set_random_seed(seed)
            model = DANN(
                encoder(),
                keras.Sequential([keras.layers.Dense(10, activation="softmax")]),
                keras.Sequential([
                    keras.layers.Dense(100, activation="relu"),
                    keras.layers.Dense(1, activation="sigmoid"),
                ]),
                Xt=x_target,
                lambda_=lambda_,
                loss="categorical_crossentropy",  # ADAPT reshapes predictions to y
                optimizer=keras.optimizers.Adam(1e-3),
                random_state=seed,
                verbose=0,
            )
            one_hot = np.eye(10, dtype="float32")[y_source]
            model.fit(x_source, one_hot, epochs=args.epochs, batch_size=32, verbose=0)
            accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))
            accuracies.append(accuracy)
            print(f"adapt dann lambda={lambda_} seed={seed} target_acc={accuracy:.3f}", flush=True)
        results[str(lambda_)] = {
            "mean": float(np.mean(accuracies)),
            "std": float(np.std(accuracies)),
            "accuracies": accuracies,
        }
    from importlib.metadata import version

    summary = {
        "adapt": version("adapt"),
        "tensorflow": tf.__version__,
        "config": vars(args),
        "dann_by_lambda": results,
    }
    suffix = "_abs" if args.first_activation == "abs" else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"adapt_comparison{suffix}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: round(v["mean"], 3) for k, v in results.items()}))


if __name__ == "__main__":
    main()
