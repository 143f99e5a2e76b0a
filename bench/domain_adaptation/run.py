"""Domain adaptation benchmark: digits -> digits-m target accuracy per backend.

Trains the same small CNN five ways and reports the accuracy on the target
test split (mean and std over seeds):

- source_only: label loss on source rows only (the CORAL model with
  `domain_loss_weight=0`, so batches, steps and schedule are identical),
- dann, coral, mmd: `keras_transfer.adaptation` models, plain `model.fit`,
- target_only: supervised on the labelled target train split (ceiling).

Every run uses the same model (per-image standardisation, conv 32-48, dense
128 tanh features, linear label head), the same balanced batches
(`paired_dataset`), Adam with the DANN learning-rate annealing and, for DANN,
the DANN lambda ramp. The flags (`--batch-norm`, `--feature-units`,
`--head-units`, `--disc-units`, `--disc-dropout`, `--coral-weight`,
`--mmd-weight`, `--optimizer`, `--lr`, ...) change that setup for every method
alike; the JSON records the configuration it ran.

    python bench/domain_adaptation.py --backend jax
    python bench/domain_adaptation.py --backend tensorflow --seeds 3

Writes `bench/domain_adaptation/results/domain_adaptation_<backend>.json`, regenerates the
markdown table `bench/domain_adaptation/results/domain_adaptation.md` from every JSON there,
and plots a PCA of source vs target features before (source_only) and after
(dann) adaptation to `bench/domain_adaptation/results/domain_adaptation_pca_<backend>.png`.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
METHODS = ("source_only", "dann", "coral", "mmd", "target_only")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--source", default="digits")
    parser.add_argument("--target", default="digits-m")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--lambda-max", type=float, default=1.0)
    parser.add_argument(
        "--lambda-schedule", choices=("ramp", "constant"), default="ramp",
        help="DANN lambda: the DANN ramp to --lambda-max, or --lambda-max throughout",
    )
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument(
        "--standardize", action=argparse.BooleanOptionalAction, default=True,
        help="per-image standardisation (zero mean, unit std) as the first layer",
    )
    parser.add_argument(
        "--batch-norm", action=argparse.BooleanOptionalAction, default=False,
        help="BatchNormalization after each conv (statistics of the mixed batch)",
    )
    parser.add_argument(
        "--feature-units", type=int, default=128,
        help="width of the tanh feature layer; 0 = the flattened conv output",
    )
    parser.add_argument("--disc-units", type=int, nargs="+", default=[100])
    parser.add_argument(
        "--head-units", type=int, nargs="*", default=[],
        help="hidden layers of the label head (the DANN paper: 100 100)",
    )
    parser.add_argument("--coral-weight", type=float, default=1.0)
    parser.add_argument("--mmd-weight", type=float, default=1.0)
    parser.add_argument("--disc-dropout", type=float, default=0.0)
    parser.add_argument(
        "--augment", type=float, default=0.0,
        help="random translation/rotation/zoom of this fraction on every training row",
    )
    parser.add_argument("--feature-dropout", type=float, default=0.0)
    parser.add_argument(
        "--disc-lr-factor", type=float, default=1.0,
        help="learning-rate factor of the DANN discriminator (LayerwiseOptimizer)",
    )
    parser.add_argument("--beta-1", type=float, default=0.9, help="Adam beta_1")
    parser.add_argument(
        "--first-activation", choices=("relu", "abs"), default="relu",
        help="activation of the first conv; abs responds to both contrast polarities",
    )
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument(
        "--lr-schedule", choices=("dann", "constant"), default="dann",
        help="DANN learning-rate annealing lr / (1 + 10 p) ** 0.75, or a constant lr",
    )
    parser.add_argument("--results-dir", default=None, help="write results here instead")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    return parser.parse_args()


def standardize(images):
    from keras import ops

    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    std = ops.std(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) / (std + 1e-3)


def feature_extractor(args):
    import keras

    layers = []
    if args.augment:
        layers += [
            keras.layers.RandomTranslation(args.augment, args.augment, fill_mode="nearest"),
            keras.layers.RandomRotation(args.augment / 2, fill_mode="nearest"),
            keras.layers.RandomZoom(args.augment, fill_mode="nearest"),
        ]
    if args.standardize:
        layers += [keras.layers.Lambda(standardize)]
    else:
        layers += [keras.layers.Rescaling(1.0 / 255)]
    for index, filters in enumerate((32, 48)):
        layers.append(keras.layers.Conv2D(filters, 5, padding="same"))
        if args.batch_norm:
            layers.append(keras.layers.BatchNormalization())
        if index == 0 and args.first_activation == "abs":
            layers.append(keras.layers.Activation(keras.ops.abs))
        else:
            layers.append(keras.layers.ReLU())
        layers.append(keras.layers.MaxPooling2D())
    layers.append(keras.layers.Flatten())
    if args.feature_dropout:
        layers.append(keras.layers.Dropout(args.feature_dropout))
    if args.feature_units:
        layers.append(keras.layers.Dense(args.feature_units, activation="tanh"))
    return keras.Sequential(layers, name="features")


def build(method, input_shape, total_steps, args):
    import keras

    from keras_transfer import adaptation
    from keras_transfer import schedules

    lr = args.lr or (1e-3 if args.optimizer == "adam" else 1e-2)
    if args.lr_schedule == "dann":
        lr = schedules.DANNDecay(initial_learning_rate=lr, total_steps=total_steps)
    if args.optimizer == "adam":
        optimizer = keras.optimizers.Adam(lr, beta_1=args.beta_1)
    else:
        optimizer = keras.optimizers.SGD(lr, momentum=0.9)
    if method == "dann" and args.disc_lr_factor != 1.0:
        from keras_transfer.optimizers import LayerwiseOptimizer

        optimizer = LayerwiseOptimizer(
            optimizer, groups=[("discriminator/*", args.disc_lr_factor)]
        )
    features = feature_extractor(args)
    head = keras.Sequential(
        [keras.layers.Dense(units, activation="relu") for units in args.head_units]
        + [keras.layers.Dense(10)],
        name="label_head",
    )
    common = dict(optimizer=optimizer, input_shape=input_shape)
    if method == "dann":
        return adaptation.build_dann(
            features,
            head,
            discriminator=adaptation.default_discriminator(
                units=tuple(args.disc_units), dropout=args.disc_dropout
            ),
            hp_lambda=(
                schedules.DANNLambda(total_steps=total_steps, max_value=args.lambda_max)
                if args.lambda_schedule == "ramp"
                else args.lambda_max
            ),
            **common,
        )
    if method == "mmd":
        return adaptation.build_mmd(
            features, head, domain_loss_weight=args.mmd_weight, **common
        )
    weight = 0.0 if method in ("source_only", "target_only") else args.coral_weight
    return adaptation.build_coral(features, head, domain_loss_weight=weight, **common)


def run_one(method, seed, data, args):
    import keras
    import numpy as np

    from keras_transfer import adaptation

    keras.utils.set_random_seed(seed)
    x_source, y_source, x_target, y_target, x_test, y_test = data
    if method == "target_only":
        x_source, y_source = x_target, y_target
    half = args.batch_size // 2
    steps = -(-max(len(x_source), len(x_target)) // half)
    model = build(method, x_source.shape[1:], steps * args.epochs, args)
    dataset = adaptation.paired_dataset(
        (x_source, y_source), x_target, batch_size=args.batch_size,
        num_classes=10, seed=seed,
    )
    start = time.time()
    model.fit(dataset, epochs=args.epochs, verbose=0)
    seconds = time.time() - start
    logits = model.classifier.predict(x_test, batch_size=256, verbose=0)
    correct = np.argmax(logits, axis=-1) == y_test
    return model, correct, seconds


def brightness_quartiles(images):
    """Quartile index (0 = darkest) of each image's mean brightness."""
    import numpy as np

    brightness = images.reshape(len(images), -1).mean(axis=1)
    return np.digitize(brightness, np.quantile(brightness, [0.25, 0.5, 0.75]))


def pca_plot(models, data, path):
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.decomposition import PCA

    x_source_test, x_target_test = data
    figure, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.5))
    for axis, (title, model) in zip(axes, models.items()):
        extractor = keras.Model(model.inputs, model.get_layer("features").output)
        source = extractor.predict(x_source_test, verbose=0)
        target = extractor.predict(x_target_test, verbose=0)
        points = PCA(2).fit_transform(np.concatenate([source, target]))
        axis.scatter(*points[: len(source)].T, s=6, alpha=0.6, label="source (digits)")
        axis.scatter(*points[len(source) :].T, s=6, alpha=0.6, label="target (digits-m)")
        axis.set_title(f"{title}: feature PCA")
        axis.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_table():
    rows = []
    for path in sorted(RESULTS.glob("domain_adaptation_*.json")):
        result = json.loads(path.read_text())
        cells = [
            f"{result['methods'][m]['mean'] * 100:.1f} ± {result['methods'][m]['std'] * 100:.1f}"
            if m in result["methods"] else "-"
            for m in METHODS
        ]
        seconds = sum(r["seconds_mean"] for r in result["methods"].values())
        rows.append(
            f"| {result['backend']} | {' | '.join(cells)} | {seconds:.0f} |"
        )
    header = (
        "Target test accuracy (%) on digits -> digits-m, mean ± std over seeds "
        "(`python bench/domain_adaptation.py --backend <name>`).\n\n"
        f"| backend | {' | '.join(METHODS)} | train s / seed |\n"
        f"|---|{'---|' * len(METHODS)}---|\n"
    )
    quartiles = [
        "\nTarget test accuracy (%) per quartile of image brightness, darkest to "
        "brightest (seed mean): `|patch - digit|` inverts the digit on bright "
        "patches, the shift that is hard to adapt to.\n",
        "| backend | method | Q1 (dark) | Q2 | Q3 | Q4 (bright) |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("domain_adaptation_*.json")):
        result = json.loads(path.read_text())
        for method, values in result["methods"].items():
            if "by_brightness_quartile" in values:
                cells = " | ".join(f"{v * 100:.0f}" for v in values["by_brightness_quartile"])
                quartiles.append(f"| {result['backend']} | {method} | {cells} |")
    text = header + "\n".join(rows) + "\n"
    if len(quartiles) > 3:
        text += "\n".join(quartiles) + "\n"
    (RESULTS / "domain_adaptation.md").write_text(text)


def main():
    args = parse_args()
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND"):
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    import keras
    import numpy as np

    from keras_transfer.datasets import load_builtin

    backend = keras.backend.backend()
    size = args.image_size
    x_source, y_source = load_builtin(args.source, "train", image_size=size)
    x_source_test, _ = load_builtin(args.source, "test", image_size=size)
    x_target, y_target = load_builtin(args.target, "train", image_size=size)
    x_test, y_test = load_builtin(args.target, "test", image_size=size)
    data = (x_source, y_source, x_target, y_target, x_test, y_test)

    if args.results_dir:
        global RESULTS
        RESULTS = pathlib.Path(args.results_dir)
    results = {}
    plotted = {}
    quartile = brightness_quartiles(x_test)
    for method in args.methods:
        accuracies, seconds, by_quartile = [], [], []
        for seed in range(args.seeds):
            model, correct, elapsed = run_one(method, seed, data, args)
            accuracy = float(np.mean(correct))
            accuracies.append(accuracy)
            by_quartile.append([float(np.mean(correct[quartile == q])) for q in range(4)])
            seconds.append(elapsed)
            print(f"{backend} {method} seed={seed} target_acc={accuracy:.3f} ({elapsed:.0f}s)", flush=True)
            if seed == 0 and method in ("source_only", "dann"):
                plotted[method] = model
        results[method] = {
            "mean": float(np.mean(accuracies)),
            "std": float(np.std(accuracies)),
            "accuracies": accuracies,
            # Target test accuracy per quartile of image brightness (darkest
            # first): |patch - digit| inverts the digit on bright patches.
            "by_brightness_quartile": np.mean(by_quartile, axis=0).tolist(),
            "seconds_mean": float(np.mean(seconds)),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "backend": backend,
        "source": args.source,
        "target": args.target,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "image_size": size,
        "config": {k: v for k, v in vars(args).items() if k not in ("backend", "results_dir")},
        "methods": results,
    }
    (RESULTS / f"domain_adaptation_{backend}.json").write_text(json.dumps(summary, indent=2))
    write_table()
    if len(plotted) == 2:
        pca_plot(plotted, (x_source_test, x_test), RESULTS / f"domain_adaptation_pca_{backend}.png")
    print(json.dumps({m: round(r["mean"], 3) for m, r in results.items()}))


if __name__ == "__main__":
    main()
