"""Domain adaptation across several shifts: is a method robust, or tuned to one pair?

Runs the model and training of `bench/domain_adaptation.py` (same flags, same
defaults) on digits -> each offline target domain of
`keras_transfer.datasets.load_builtin` (`digits-m`, `digits-rotated`,
`digits-noisy`, `digits-colored`) for a list of method variants, and reports
target test accuracy (mean, std over seeds), each variant's gain over
source-only per shift, and its mean and worst gain over all shifts: a method
worth using by default gains on average and loses nowhere.

Variants are `name[:key=value,...]`, with keys `lambda` (DANN ramp maximum),
`const` (DANN: this constant lambda instead of the ramp), `weight` (CORAL/MMD
loss weight), `disc` (DANN discriminator widths, `-` separated) and `dropout`
(DANN discriminator dropout); `lr=constant` (any method) drops the DANN
learning-rate annealing:

    python bench/domain_shifts.py --backend tensorflow
    python bench/domain_shifts.py --backend jax --variants source_only dann:lambda=0.1 mmd

Writes `bench/domain_adaptation/results/domain_shifts_<backend>.json` and regenerates
`bench/domain_adaptation/results/domain_shifts.md` from every such JSON there.
"""

import argparse
import copy
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGETS = ("digits-m", "digits-rotated", "digits-noisy", "digits-colored")
VARIANTS = (
    "source_only",
    "dann:lambda=0.1",
    "dann:lambda=0.3",
    "dann:lambda=1",
    "coral",
    "mmd",
    "target_only",
)


def _bench():
    spec = importlib.util.spec_from_file_location("domain_adaptation", HERE / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_variant(text, base):
    """`"dann:lambda=0.3"` -> (method, args copy with the overrides)."""
    method, _, options = text.partition(":")
    args = copy.copy(base)
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key == "lambda" and method == "dann":
            args.lambda_max = float(value)
        elif key == "weight" and method in ("coral", "mmd"):
            setattr(args, f"{method}_weight", float(value))
        elif key == "const" and method == "dann":
            args.lambda_max, args.lambda_schedule = float(value), "constant"
        elif key == "disc" and method == "dann":
            args.disc_units = [int(v) for v in value.split("-")]
        elif key == "dropout" and method == "dann":
            args.disc_dropout = float(value)
        elif key == "lr" and value in ("dann", "constant"):
            args.lr_schedule = value
        else:
            raise ValueError(
                f"Invalid variant option {option!r} for method {method!r} in "
                f"{text!r}. Allowed: dann: lambda=, const=, disc=, dropout=; coral/mmd: weight=; any: lr=dann|constant."
            )
    return method, args


def main():
    bench = _bench()
    sys.argv, argv = [sys.argv[0]], sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--results-dir", default=None)
    ours, rest = parser.parse_known_args(argv)
    if ours.backend and ours.backend != os.environ.get("KERAS_BACKEND"):
        env = dict(os.environ, KERAS_BACKEND=ours.backend)
        sys.exit(subprocess.call([sys.executable, __file__, *argv], env=env))
    sys.argv += rest
    base = bench.parse_args()
    for text in ours.variants:
        method, _ = parse_variant(text, base)
        if method not in bench.METHODS:
            raise ValueError(f"Unknown method {method!r} in variant {text!r}. Allowed: {bench.METHODS}")

    import keras
    import numpy as np

    from keras_transfer.datasets import load_builtin

    backend = keras.backend.backend()
    size = base.image_size
    x_source, y_source = load_builtin("digits", "train", image_size=size)
    results = {}
    for target in ours.targets:
        x_target, y_target = load_builtin(target, "train", image_size=size)
        x_test, y_test = load_builtin(target, "test", image_size=size)
        data = (x_source, y_source, x_target, y_target, x_test, y_test)
        results[target] = {}
        for text in ours.variants:
            method, args = parse_variant(text, base)
            accuracies = []
            for seed in range(ours.seeds):
                _, correct, seconds = bench.run_one(method, seed, data, args)
                accuracies.append(float(np.mean(correct)))
                print(f"{backend} {target} {text} seed={seed} acc={accuracies[-1]:.3f} ({seconds:.0f}s)", flush=True)
            results[target][text] = {
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies)),
                "accuracies": accuracies,
            }
    out = pathlib.Path(ours.results_dir) if ours.results_dir else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "backend": backend,
        "seeds": ours.seeds,
        "config": {k: v for k, v in vars(base).items() if k not in ("backend", "results_dir", "methods")},
        "results": results,
    }
    (out / f"domain_shifts_{backend}.json").write_text(json.dumps(summary, indent=2))
    write_table(out)


def write_table(directory):
    import numpy as np

    lines = [
        "Target test accuracy (%) on digits -> each target domain, mean ± std over "
        "seeds, and the gain over source-only in points "
        "(`python bench/domain_shifts.py --backend <name>`). `mean gain` and "
        "`worst gain` summarise the four shifts. Variants: `dann:lambda=x` is the "
        "DANN ramp to x with the benchmark's discriminator (`--disc-units`, default "
        "one layer of 100, no dropout), `const=x` a constant lambda, `disc=`/`dropout=` "
        "another discriminator (`disc=1024-1024,dropout=0.5` is the library default); "
        "`target_only` trains on labelled target data (the ceiling).\n"
    ]
    for path in sorted(directory.glob("domain_shifts_*.json")):
        summary = json.loads(path.read_text())
        results = summary["results"]
        variants = list(next(iter(results.values())))
        lines += [
            f"\n**{summary['backend']}** ({summary['seeds']} seeds)\n",
            f"| shift | {' | '.join(variants)} |",
            f"|---|{'---|' * len(variants)}",
        ]
        gains = {v: [] for v in variants}
        for target, row in results.items():
            base = row.get("source_only", {}).get("mean")
            cells = []
            for v in variants:
                cell = f"{row[v]['mean'] * 100:.1f} ± {row[v]['std'] * 100:.1f}"
                if base is not None and v not in ("source_only", "target_only"):
                    gain = (row[v]["mean"] - base) * 100
                    gains[v].append(gain)
                    cell += f" ({gain:+.1f})"
                cells.append(cell)
            lines.append(f"| {target} | {' | '.join(cells)} |")
        for label, reduce in (("mean gain", np.mean), ("worst gain", np.min)):
            cells = [f"{reduce(gains[v]):+.1f}" if gains[v] else "" for v in variants]
            lines.append(f"| {label} | {' | '.join(cells)} |")
    (directory / "domain_shifts.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
