"""Generative (pixel-level) domain adaptation: PixelDA vs source-only per shift.

For each target shift (digits -> digits-m, -rotated, -noisy, -colored) and
seed, trains

- source_only: the protocol `bench/domain_adaptation/run.py` had before
  abea015 (today's run.py trains conv 16-32 for 15 epochs on `select`'s
  split, so its `source_only` is not this baseline; the model:
  per-image standardisation, conv 32-48 ReLU + max-pool, dense 128
  tanh, linear head; the label loss on the source rows of `paired_dataset`
  batches, Adam 1e-3 with the DANN learning-rate annealing, 40 epochs,
  batch 64, 16 px);
- generative: `keras_transfer.adaptation.build_pixelda` with that same
  classifier as the task classifier, trained with plain `model.fit` on the
  same `paired_dataset` batches,

and reports the target test accuracy (mean, std and every seed).

    python bench/domain_adaptation/generative.py --backend jax
    python bench/domain_adaptation/generative.py --backend tensorflow --shifts digits-m --seeds 1

    python bench/domain_adaptation/generative.py --readme-only

Writes its full record, `bench/domain_adaptation/results/generative-<backend>.json`
(`{"shifts": {shift: {method: {"mean", "std", "accuracies", ...}}},
"config": ...}`), and for seed 0 a translation grid per shift,
`results/generative-<shift>.png`; then copies the `generative` numbers (with
their provenance and this harness's source-only baseline) into the
benchmark's table, `shifts[shift]["generative"]` of `results/<backend>.json`
(`run.sync_generative`; null where a backend or shift is not measured), and
regenerates `bench/domain_adaptation/README.md` with run.py's generator,
whose "Generative (PixelDA)" section shows this harness's tables and grids
(`--readme-only` does only the copy and the README).
"""

import argparse
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (the benchmark's table: results/<backend>.json, README.md)

from common import machine  # noqa: E402
from common import write_json  # noqa: E402

RESULTS = HERE / "results"
SHIFTS = ("digits-m", "digits-rotated", "digits-noisy", "digits-colored")
METHODS = ("source_only", "generative")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"))
    parser.add_argument(
        "--shifts", nargs="+", default=list(SHIFTS),
        help="target domains: any built-in name `load_builtin` knows",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--source-epochs", type=int, default=40, help="as run.py before abea015")
    parser.add_argument("--epochs", type=int, default=60, help="PixelDA epochs")
    parser.add_argument("--lr", type=float, default=1e-3, help="PixelDA Adam rate")
    parser.add_argument("--beta-1", type=float, default=0.5, help="PixelDA Adam beta_1")
    parser.add_argument("--adversarial-weight", type=float, default=1.0)
    parser.add_argument("--content-weight", type=float, default=0.0)
    parser.add_argument("--content-loss", default="pairwise_mse")
    parser.add_argument("--instance-noise", type=float, default=0.1)
    parser.add_argument("--generator-filters", type=int, default=16)
    parser.add_argument("--generator-blocks", type=int, default=2)
    parser.add_argument("--verbose", type=int, default=0, help="fit verbosity of PixelDA")
    parser.add_argument("--results", default=None, help="JSON path (default: results/generative-<backend>.json)")
    parser.add_argument(
        "--readme-only", action="store_true",
        help="only copy results/generative-*.json into results/<backend>.json and regenerate README.md",
    )
    return parser.parse_args()


def standardize(images):
    from keras import ops

    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    std = ops.std(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) / (std + 1e-3)


def classifier(input_shape):
    """run.py's default model before abea015, as one images -> logits model."""
    import keras

    images = keras.Input(input_shape, name="images")
    h = keras.layers.Lambda(standardize, name="standardize")(images)
    for filters in (32, 48):
        h = keras.layers.Conv2D(filters, 5, padding="same")(h)
        h = keras.layers.ReLU()(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(128, activation="tanh")(h)
    return keras.Model(images, keras.layers.Dense(10)(h), name="classifier")


def train_source_only(data, seed, args):
    import keras

    from keras_transfer import adaptation
    from keras_transfer import schedules

    x_source, y_source, x_target = data
    half = args.batch_size // 2
    steps = -(-max(len(x_source), len(x_target)) // half) * args.source_epochs
    model = classifier(x_source.shape[1:])
    features = keras.Model(model.inputs, model.layers[-2].output, name="features")
    # As run.py's source_only: the CORAL model with domain_loss_weight=0.
    adapted = adaptation.build_coral(
        features,
        model.layers[-1],
        domain_loss_weight=0.0,
        optimizer=keras.optimizers.Adam(
            schedules.DANNDecay(initial_learning_rate=1e-3, total_steps=steps)
        ),
    )
    adapted.fit(
        adaptation.paired_dataset(
            (x_source, y_source), x_target, batch_size=args.batch_size,
            num_classes=10, seed=seed,
        ),
        epochs=args.source_epochs,
        verbose=0,
    )
    return model


def train_generative(data, seed, args):
    import keras

    from keras_transfer import adaptation

    x_source, y_source, x_target = data
    shape = x_source.shape[1:]
    model = adaptation.build_pixelda(
        shape,
        10,
        classifier=classifier(shape),
        generator=adaptation.pixelda_generator(
            shape, filters=args.generator_filters,
            residual_blocks=args.generator_blocks,
        ),
        adversarial_weight=args.adversarial_weight,
        content_weight=args.content_weight,
        content_loss=args.content_loss,
        instance_noise=args.instance_noise,
        optimizer=keras.optimizers.Adam(args.lr, beta_1=args.beta_1),
    )
    history = model.fit(
        adaptation.paired_dataset(
            (x_source, y_source), x_target, batch_size=args.batch_size,
            num_classes=10, seed=seed,
        ),
        epochs=args.epochs,
        verbose=args.verbose,
    )
    last = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    return model, last


def publish():
    """Copies the generative numbers into `results/<backend>.json`, regenerates README.md."""
    written = run.sync_generative()
    run.write_benchmark_readme()
    return written


def main():
    args = parse_args()
    if args.readme_only:
        written = publish()
        print(f"wrote {', '.join(str(p) for p in written)} and {HERE / 'README.md'}")
        return
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND"):
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    import keras
    import numpy as np

    from keras_transfer import adaptation
    from keras_transfer.datasets import load_builtin

    backend = keras.backend.backend()
    path = pathlib.Path(args.results or RESULTS / f"generative-{backend}.json")
    size = args.image_size
    x_source, y_source = load_builtin("digits", "train", image_size=size)
    config = {k: v for k, v in vars(args).items() if k not in ("backend", "results")}
    config["classifier"] = (
        "run.py's default before abea015: per-image standardisation, conv 5x5 32 and 48 "
        "(ReLU, max-pool), dense 128 tanh, dense 10"
    )
    results = {}
    for shift in args.shifts:
        x_target, _ = load_builtin(shift, "train", image_size=size)
        x_test, y_test = load_builtin(shift, "test", image_size=size)
        data = (x_source, y_source, x_target)
        results[shift] = {}
        for method in args.methods:
            accuracies, seconds, final_logs = [], [], []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                keras.utils.set_random_seed(seed)
                start = time.time()
                if method == "source_only":
                    model = train_source_only(data, seed, args)
                else:
                    adapted, last = train_generative(data, seed, args)
                    model = adapted.classifier
                    final_logs.append(last)
                    if seed == args.first_seed:
                        adaptation.plot_translations(
                            adapted, x_source[:10], RESULTS / f"generative-{shift}.png",
                            samples=2, max_images=10,
                        )
                elapsed = time.time() - start
                logits = model.predict(x_test, batch_size=256, verbose=0)
                accuracy = float(np.mean(np.argmax(logits, -1) == y_test))
                accuracies.append(accuracy)
                seconds.append(elapsed)
                print(
                    f"{backend} {shift} {method} seed={seed} "
                    f"target_acc={accuracy:.3f} ({elapsed:.0f}s) "
                    f"{final_logs[-1] if final_logs and method == 'generative' else ''}",
                    flush=True,
                )
            results[shift][method] = {
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies)),
                "accuracies": accuracies,
                "seconds_mean": float(np.mean(seconds)),
                **({"final_logs": final_logs} if final_logs else {}),
            }
        if {"source_only", "generative"} <= set(results[shift]):
            gain = results[shift]["generative"]["mean"] - results[shift]["source_only"]["mean"]
            print(f"{backend} {shift} gain={gain * 100:+.1f} points", flush=True)
        # After every shift, so a stopped run keeps what it measured.
        write_json(path, {"backend": backend, "machine": machine(), "config": config, "shifts": results})
        publish()
    print(f"wrote {path}, the generative entries of results/{backend}.json and {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
