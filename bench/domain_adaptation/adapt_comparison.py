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
`bench/domain_adaptation/results/adapt_comparison[_abs].json` and prints the accuracies.

`--targets` runs other target domains too (e.g. the four shifts of
`bench/domain_shifts.py`) and `--coral-lambdas` adds ADAPT's `DeepCORAL`; with
either, the results go to `bench/domain_adaptation/results/adapt_shifts[_abs].json`, keyed by
target then method:

    TF_USE_LEGACY_KERAS=1 .adapt-venv/bin/python bench/adapt_comparison.py \
        --targets digits-m digits-rotated digits-noisy digits-colored --coral-lambdas 1
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
    parser.add_argument("--coral-lambdas", type=float, nargs="*", default=[])
    parser.add_argument("--targets", nargs="+", default=["digits-m"])
    parser.add_argument("--first-activation", choices=("relu", "abs"), default="relu")
    args = parser.parse_args()
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        sys.exit("Run with TF_USE_LEGACY_KERAS=1 (ADAPT needs tf.keras 2); see the docstring.")

    import numpy as np
    import tensorflow as tf
    from adapt.feature_based import DANN
    from adapt.feature_based import DeepCORAL

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from keras_transfer.datasets.builtin import load_builtin

    keras = tf.keras
    x_source, y_source = load_builtin("digits", "train", image_size=16)
    x_source = x_source.astype("float32")

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

    def task():
        return keras.Sequential([keras.layers.Dense(10, activation="softmax")])

    def dann(lambda_, seed, x_target):
        return DANN(
            encoder(),
            task(),
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

    def deep_coral(lambda_, seed, x_target):
        return DeepCORAL(
            encoder(),
            task(),
            Xt=x_target,
            lambda_=lambda_,
            loss="categorical_crossentropy",
            optimizer=keras.optimizers.Adam(1e-3),
            random_state=seed,
            verbose=0,
        )

    runs = [(f"dann:lambda={l:g}", dann, l) for l in args.lambdas]
    runs += [(f"deep_coral:lambda={l:g}", deep_coral, l) for l in args.coral_lambdas]
    by_target = {}
    for target in args.targets:
        x_target, _ = load_builtin(target, "train", image_size=16)
        x_test, y_test = load_builtin(target, "test", image_size=16)
        x_target, x_test = x_target.astype("float32"), x_test.astype("float32")
        results = by_target[target] = {}
        for label, make, lambda_ in runs:
            accuracies = []
            for seed in range(args.seeds):
                tf.keras.utils.set_random_seed(seed)
                model = make(lambda_, seed, x_target)
                one_hot = np.eye(10, dtype="float32")[y_source]
                model.fit(x_source, one_hot, epochs=args.epochs, batch_size=32, verbose=0)
                accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), -1) == y_test))
                accuracies.append(accuracy)
                print(f"adapt {target} {label} seed={seed} target_acc={accuracy:.3f}", flush=True)
            results[label] = {
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies)),
                "accuracies": accuracies,
            }
    from importlib.metadata import version

    summary = {
        "adapt": version("adapt"),
        "tensorflow": tf.__version__,
        "config": vars(args),
    }
    suffix = "_abs" if args.first_activation == "abs" else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.targets == ["digits-m"] and not args.coral_lambdas:
        # The original digits -> digits-m comparison (results by DANN lambda).
        summary["dann_by_lambda"] = {
            label.split("=")[1]: value for label, value in by_target["digits-m"].items()
        }
        path = RESULTS / f"adapt_comparison{suffix}.json"
    else:
        summary["results"] = by_target
        path = RESULTS / f"adapt_shifts{suffix}.json"
    path.write_text(json.dumps(summary, indent=2))
    print(json.dumps({t: {k: round(v["mean"], 3) for k, v in r.items()} for t, r in by_target.items()}))


if __name__ == "__main__":
    main()
