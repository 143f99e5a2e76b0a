"""Domain adaptation benchmark: every method on every shift, and the recommended path.

For each target domain of `keras_transfer.datasets.load_builtin` (digits ->
`digits-m`, `-rotated`, `-noisy`, `-colored`, `-combined`, `-sensor`) and
each seed, one `keras_transfer.adaptation.select` call trains every
candidate method of `keras_transfer.adaptation.CANDIDATES` (plus `adabn`
when the model has BatchNormalization) from the same initial weights on the
same batches, scores each without target labels (SND, DEV) and evaluates
each on the labelled target test split (for this table only: `select` never
reads it). From that one run:

- each method's column is its candidate's target test accuracy;
- `recommended` is the candidate `keras_transfer.adaptation.adapt` returns:
  its rule applied to its own candidates (`RECOMMENDED`), read from the same
  run with `AdaptationReport.choice_among` (the rule compares each
  candidate with source-only alone, so the choice is the one `adapt`
  makes; `--check-recommended SHIFT SEED` runs `adapt` itself and stores
  the comparison under `recommended_check`);
- `target_only` trains the same model on the labelled target train split
  (the ceiling);
- each validator's Spearman rank correlation with the true accuracy over
  the candidates, per shift and seed.

The model (every method alike): per-image standardisation, conv 16-32 5x5
ReLU + max pooling, dense 128 tanh features, linear head; 16 px, 15 epochs
(the encoder of the earlier benchmark, conv 32-48, at a third of the cost:
2 shared CPU cores); Adam with the DANN learning-rate annealing from 1e-3;
64-row balanced batches
(`paired_dataset`); `select`'s split (a fifth of source and of target train
rows held out for scoring, so methods train on the rest).

    python bench/domain_adaptation/run.py --backend tensorflow
    python bench/domain_adaptation/run.py --backend jax --shifts digits-m --seeds 1

Writes `bench/domain_adaptation/results/<backend>.json`
(`{"shifts": {shift: {method: {"mean", "std", "accuracies"}}}, ...}`,
accuracy in [0, 1]; `--config NAME` stores the run under `configs[NAME]`
instead) and regenerates `bench/domain_adaptation/README.md` from every JSON
there. `generative` (PixelDA) is trained by its own harness, `generative.py`,
against its own source-only run; its numbers are copied from
`results/generative-<backend>.json` into `shifts[shift]["generative"]` (with
their provenance and that baseline) when either harness writes, and are
null for a backend it has not measured. `generative.py`'s tables and
translation grids are a section of the same README.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent))
from common import machine  # noqa: E402
from common import markdown_table  # noqa: E402
from common import write_json  # noqa: E402
from common import write_readme  # noqa: E402

SHIFTS = (
    "digits-m",
    "digits-rotated",
    "digits-noisy",
    "digits-colored",
    "digits-combined",
    "digits-sensor",
)
# Measured by another harness (generative.py), copied into shifts by `generative_entry`.
GENERATIVE = "generative"
BACKENDS = ("tensorflow", "jax", "torch")
VALIDATOR_FIELDS = {"snd": "snd", "dev": "dev_risk"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--shifts", nargs="+", default=list(SHIFTS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--methods", nargs="+", default=None,
        help="candidates to train (default: every CANDIDATES entry and adabn)",
    )
    parser.add_argument("--no-target-only", action="store_true")
    parser.add_argument(
        "--batch-norm", action="store_true",
        help="BatchNormalization after each conv (momentum 0.9)",
    )
    parser.add_argument(
        "--first-activation", choices=("relu", "abs"), default="relu",
        help="abs: |conv| first layer, responds to both contrast polarities",
    )
    parser.add_argument("--config", default=None, help="store under configs[NAME]")
    parser.add_argument("--description", default="", help="one line for configs[NAME]")
    parser.add_argument(
        "--check-recommended", nargs=2, metavar=("SHIFT", "SEED"),
        help="run adapt() itself on one stored shift and seed, compare with the stored choice",
    )
    parser.add_argument("--readme-only", action="store_true")
    parser.add_argument(
        "--rechoose", action="store_true",
        help="re-apply adapt's current rule to the stored candidates, then the README",
    )
    return parser.parse_args()


def standardize(images):
    from keras import ops

    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    std = ops.std(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) / (std + 1e-3)


def model_parts(args, input_shape):
    """The benchmark's feature extractor and label head (fresh weights)."""
    import keras

    layers = [keras.Input(input_shape), keras.layers.Lambda(standardize)]
    for index, filters in enumerate((16, 32)):
        layers.append(keras.layers.Conv2D(filters, 5, padding="same"))
        if args.batch_norm:
            layers.append(keras.layers.BatchNormalization(momentum=0.9))
        if index == 0 and args.first_activation == "abs":
            layers.append(keras.layers.Activation(keras.ops.abs))
        else:
            layers.append(keras.layers.ReLU())
        layers.append(keras.layers.MaxPooling2D())
    layers += [keras.layers.Flatten(), keras.layers.Dense(128, activation="tanh")]
    features = keras.Sequential(layers, name="features")
    return features, keras.layers.Dense(10, name="label_head")


def spearman(a, b):
    import numpy as np

    def ranks(values):
        values = np.asarray(values, dtype="float64")
        order = values.argsort()
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        for value in np.unique(values):  # ties share their mean rank
            ranked[values == value] = ranked[values == value].mean()
        return ranked

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def run_shift(shift, seed, data, args, methods):
    import keras
    import numpy as np

    from keras_transfer import adaptation

    keras.backend.clear_session()
    x_source, y_source = data["digits"]
    x_target, y_target, x_test, y_test = data[shift]
    keras.utils.set_random_seed(seed)
    features, head = model_parts(args, x_source.shape[1:])
    start = time.time()
    result = adaptation.select(
        features, head, (x_source, y_source), x_target, methods,
        epochs=args.epochs, batch_size=args.batch_size, seed=seed,
        target_test=(x_test, y_test),
    )
    report = result.report
    accuracies = {
        c.name: c.test_accuracy for c in report.candidates if c.test_accuracy is not None
    }
    chosen, fell_back, reason = report.choice_among(adaptation.RECOMMENDED)
    accuracies["recommended"] = accuracies[chosen]
    if not args.no_target_only:
        keras.utils.set_random_seed(seed)
        features, head = model_parts(args, x_source.shape[1:])
        ceiling = adaptation.select(
            features, head, (x_target, y_target), x_target, ["source_only"],
            epochs=args.epochs, batch_size=args.batch_size, seed=seed,
            target_test=(x_test, y_test),
        )
        accuracies["target_only"] = ceiling.report.candidates[0].test_accuracy
    scored = [c for c in report.candidates if c.score is not None]
    true = [c.test_accuracy for c in scored]
    correlations = {
        name: spearman(
            [getattr(c, field) * (1 if name == "snd" else -1) for c in scored], true
        )
        for name, field in VALIDATOR_FIELDS.items()
    }
    print(
        f"{keras.backend.backend()} {shift} seed={seed} ({time.time() - start:.0f}s) "
        + " ".join(f"{k}={v:.3f}" for k, v in accuracies.items())
        + f" | recommended -> {chosen} | rho snd={correlations['snd']:.2f} "
        f"dev={correlations['dev']:.2f}",
        flush=True,
    )
    return {
        "accuracies": accuracies,
        "choice": {"chosen": chosen, "fell_back": fell_back, "reason": reason},
        "validators": correlations,
        "candidates": [
            {k: v for k, v in vars(c).items()} for c in report.candidates
        ],
        "settings": report.settings,
    }


def check_recommended(shift, seed, args):
    """Runs `adapt` itself and compares it with the choice read from stored candidates."""
    import keras
    import numpy as np

    from keras_transfer import adaptation
    from keras_transfer.datasets import load_builtin

    backend = keras.backend.backend()
    path = RESULTS / f"{backend}.json"
    stored = json.loads(path.read_text())
    index = stored["protocol"]["seeds"].index(seed)
    expected, _, _, expected_accuracy = current_choice(stored["candidates"][shift][index])
    size = args.image_size
    x_source, y_source = load_builtin("digits", "train", image_size=size)
    x_target, _ = load_builtin(shift, "train", image_size=size)
    x_test, y_test = load_builtin(shift, "test", image_size=size)
    keras.utils.set_random_seed(seed)
    features, head = model_parts(args, x_source.shape[1:])
    result = adaptation.adapt(
        features, head, (x_source, y_source), x_target,
        epochs=args.epochs, batch_size=args.batch_size, seed=seed,
    )
    logits = result.classifier.predict(x_test, verbose=0)
    check = {
        "shift": shift,
        "seed": seed,
        "adapt_chosen": result.report.chosen,
        "adapt_test_accuracy": float(np.mean(np.argmax(logits, -1) == y_test)),
        "stored_chosen": expected,
        "stored_test_accuracy": expected_accuracy,
        "adapt_report": result.report.summary(),
    }
    print(json.dumps(check, indent=1), flush=True)
    stored = json.loads(path.read_text())
    stored["recommended_check"] = [check]
    write_json(path, stored)


def summarize(per_seed):
    import numpy as np

    methods = list(per_seed[0]["accuracies"])
    table = {}
    for method in methods:
        values = [run["accuracies"][method] for run in per_seed]
        table[method] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            "accuracies": values,
        }
    return table


def main():
    args = parse_args()
    if args.rechoose:
        for path in sorted(RESULTS.glob("*.json")):
            if path.stem in BACKENDS:
                rechoose(path)
    if args.readme_only or args.rechoose:
        write_benchmark_readme()
        return
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND"):
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    import keras
    import numpy as np

    from keras_transfer import adaptation
    from keras_transfer.datasets import load_builtin

    if args.check_recommended:
        check_recommended(args.check_recommended[0], int(args.check_recommended[1]), args)
        return
    backend = keras.backend.backend()
    methods = args.methods or [*adaptation.CANDIDATES, "adabn"]
    size = args.image_size
    data = {"digits": load_builtin("digits", "train", image_size=size)}
    for shift in args.shifts:
        data[shift] = (
            *load_builtin(shift, "train", image_size=size),
            *load_builtin(shift, "test", image_size=size),
        )
    protocol = {
        "backend": backend,
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "epochs": args.epochs,
        "image_size": size,
        "batch_size": args.batch_size,
        "batch_norm": args.batch_norm,
        "first_activation": args.first_activation,
        "recommended": list(adaptation.RECOMMENDED),
        "keras": keras.__version__,
    }
    for shift in args.shifts:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        runs = [run_shift(shift, seed, data, args, methods) for seed in seeds]
        shifts = {shift: summarize(runs)}
        # generative.py's numbers belong to the default protocol's table, not to a config.
        shifts[shift][GENERATIVE] = None if args.config else generative_entry(backend, shift)
        run = {
            "shifts": shifts,
            "selection": {shift: [run["choice"] for run in runs]},
            "validator_rank_correlation": {
                shift: {
                    name: [run["validators"][name] for run in runs]
                    for name in VALIDATOR_FIELDS
                }
            },
            "candidates": {shift: [run["candidates"] for run in runs]},
            "protocol": {**protocol, "settings": runs[0]["settings"]},
            "machine": machine(),
        }
        if args.config:
            run["description"] = args.description
        save(backend, args.config, run)  # after every shift: a stopped run keeps its shifts
    write_benchmark_readme()


def save(backend, config, run):
    """Merges one shift's results into `results/<backend>.json`."""
    path = RESULTS / f"{backend}.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    target = existing.setdefault("configs", {}).setdefault(config, {}) if config else existing
    for key in ("shifts", "selection", "validator_rank_correlation", "candidates"):
        target[key] = {**target.get(key, {}), **run[key]}
    for key in ("protocol", "machine", "description"):
        if key in run:
            target[key] = run[key]
    write_json(path, existing)


def generative_entry(backend, shift):
    """`shifts[shift]["generative"]` for `results/<backend>.json`, or None (not measured).

    Copied from `results/generative-<backend>.json` (generative.py): mean, std
    and accuracies, plus where they came from and the source-only run of that
    harness they are compared with (gains in the README are against it, not
    against this file's `source_only`).
    """
    path = RESULTS / f"generative-{backend}.json"
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    methods = payload["shifts"].get(shift, {})
    if GENERATIVE not in methods:
        return None
    config = payload["config"]
    entry = {key: methods[GENERATIVE][key] for key in ("mean", "std", "accuracies")}
    entry["measured_by"] = {
        "harness": "bench/domain_adaptation/generative.py",
        "results": f"bench/domain_adaptation/results/{path.name}",
        "seeds": list(range(config["first_seed"], config["first_seed"] + config["seeds"])),
        "protocol": {
            key: config[key]
            for key in (
                "image_size", "batch_size", "epochs", "source_epochs", "lr", "beta_1",
                "adversarial_weight", "content_weight", "content_loss", "instance_noise",
                "generator_filters", "generator_blocks", "classifier",
            )
            if key in config
        },
        "machine": payload.get("machine"),
    }
    if payload.get("note"):
        entry["measured_by"]["note"] = payload["note"]
    if "source_only" in methods:
        entry["own_source_only"] = {
            **{key: methods["source_only"][key] for key in ("mean", "std", "accuracies")},
            "about": (
                f"generative.py's source-only run ({config['source_epochs']} epochs, "
                "all train rows, PixelDA's task classifier: conv 32-48, run.py's model "
                "before abea015), same seeds and data as this entry; the baseline of "
                "its gain, not this file's source_only (today's run.py protocol)"
            ),
        }
    return entry


def sync_generative():
    """Copies `results/generative-<backend>.json` into each `results/<backend>.json`.

    Sets `shifts[shift]["generative"]` in every backend file that has a
    `shifts` table: the entry of `generative_entry`, or null where that
    backend or shift was not measured. Returns the files written.
    """
    written = []
    for backend in BACKENDS:
        path = RESULTS / f"{backend}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        if "shifts" not in result:
            continue
        measured = RESULTS / f"generative-{backend}.json"
        extra = json.loads(measured.read_text())["shifts"] if measured.exists() else {}
        for shift in [*result["shifts"], *[s for s in extra if s not in result["shifts"]]]:
            entry = generative_entry(backend, shift)
            if entry is not None or shift in result["shifts"]:
                result["shifts"].setdefault(shift, {})[GENERATIVE] = entry
        write_json(path, result)
        written.append(path)
    return written


def current_choice(candidates):
    """`adapt`'s choice (the library's rule now) among stored candidates.

    Returns `(chosen, fell_back, reason, test_accuracy_of_chosen)`.
    """
    from keras_transfer.adaptation import RECOMMENDED
    from keras_transfer.adaptation import selection

    validator = selection.DEFAULT_VALIDATOR
    results = [
        selection.CandidateResult(
            **{
                **c,
                "score": None if c["score"] is None else (
                    c["snd"] if validator == "snd" else -c["dev_risk"]
                ),
            }
        )
        for c in candidates
    ]
    report = selection.AdaptationReport(
        "", False, "", validator, selection.DEFAULT_MARGIN,
        selection.DEFAULT_SOURCE_TOLERANCE, selection.DEFAULT_COLLAPSE_RATIO,
        tuple(results), {},
    )
    chosen, fell_back, reason = report.choice_among(RECOMMENDED)
    return chosen, fell_back, reason, report.result(chosen).test_accuracy


def rechoose(path):
    """Re-applies `adapt`'s rule (as the library has it now) to stored candidates.

    The rule compares each candidate with source-only on its stored scores,
    so no model is retrained; used when `RECOMMENDED` or the rule changed
    after the runs (the change is recorded under `protocol`).
    """
    import numpy as np

    from keras_transfer.adaptation import RECOMMENDED
    from keras_transfer.adaptation import selection

    result = json.loads(path.read_text())
    for target in [result, *result.get("configs", {}).values()]:
        for shift, per_seed in target.get("candidates", {}).items():
            choices, accuracies = [], []
            for candidates in per_seed:
                chosen, fell_back, reason, accuracy = current_choice(candidates)
                choices.append({"chosen": chosen, "fell_back": fell_back, "reason": reason})
                accuracies.append(accuracy)
            target["selection"][shift] = choices
            target["shifts"][shift]["recommended"] = {
                "mean": float(np.mean(accuracies)),
                "std": float(np.std(accuracies)),
                "accuracies": accuracies,
            }
        if "protocol" in target:
            target["protocol"]["recommended"] = list(RECOMMENDED)
            target["protocol"]["rule"] = {
                "validator": selection.DEFAULT_VALIDATOR,
                "margin": selection.DEFAULT_MARGIN,
                "source_tolerance": selection.DEFAULT_SOURCE_TOLERANCE,
                "collapse_ratio": selection.DEFAULT_COLLAPSE_RATIO,
            }
    write_json(path, result)


def _percent(cell):
    if not cell:
        return "—"
    return f"{cell['mean'] * 100:.1f} ± {cell['std'] * 100:.1f}"


def _baseline(cell, base):
    """The source-only mean a cell's gain is measured against, and its mark."""
    own = cell.get("own_source_only")
    return (own["mean"], "†") if own else (base, "")


def shift_table(shifts, methods):
    """Markdown: one row per shift, one column per method, + gain rows."""
    import numpy as np

    rows, gains = [], {m: [] for m in methods}
    order = sorted(shifts, key=lambda s: (SHIFTS.index(s) if s in SHIFTS else len(SHIFTS), s))
    for shift in order:
        cells = shifts[shift]
        base = (cells.get("source_only") or {}).get("mean")
        row = [shift]
        for method in methods:
            cell = cells.get(method)
            text = _percent(cell)
            reference, mark = _baseline(cell, base) if cell else (None, "")
            if cell and reference is not None and method not in ("source_only", "target_only"):
                gain = (cell["mean"] - reference) * 100
                gains[method].append(gain)
                text += f" ({gain:+.1f}{mark})"
            row.append(text)
        rows.append(row)
    for label, reduce in (("mean gain", np.mean), ("worst gain", np.min)):
        rows.append(
            [f"**{label}**"]
            + [f"**{reduce(gains[m]):+.1f}**" if gains[m] else "" for m in methods]
        )
    return markdown_table(["shift", *methods], rows)


ORDER = (
    "source_only", "recommended", "generative", "adabn", "mcc", "entropy",
    "fixmatch", "dann", "coral", "mmd", "target_only",
)


def _methods(shifts):
    seen = []
    for cells in shifts.values():
        seen += [m for m in cells if m not in seen]
    return [m for m in ORDER if m in seen] + [m for m in seen if m not in ORDER]


def write_benchmark_readme():
    import numpy as np

    sections = [
        "Target test accuracy (%) on digits -> each shift, mean ± std over seeds; in "
        "brackets the gain over source-only in points. `recommended` is what "
        "`keras_transfer.adaptation.adapt` returns (chosen without target labels). "
        "`mean gain` / `worst gain` summarise the shifts; — is not measured. "
        "`generative` (PixelDA) is measured by its own harness, `generative.py`, "
        "and copied into `shifts` from `results/generative-<backend>.json`; † marks "
        "a gain against that harness's own source-only run (its classifier and "
        "epochs), not the `source_only` column: see "
        "[Generative (PixelDA)](#generative-pixelda). Regenerate with "
        "`python bench/domain_adaptation/run.py --readme-only` (after copying "
        "generative numbers: `generative.py --readme-only`); the protocol is in "
        "`run.py`'s docstring.",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        if path.stem not in BACKENDS:
            continue
        result = json.loads(path.read_text())
        if "shifts" not in result:
            continue
        protocol = result["protocol"]
        sections.append(
            f"## {path.stem}\n\n{len(protocol['seeds'])} seeds, {protocol['epochs']} epochs, "
            f"{protocol['image_size']} px; `{path.relative_to(HERE)}`.\n\n"
            + shift_table(result["shifts"], _methods(result["shifts"]))
        )
        rows = []
        for shift, values in result["validator_rank_correlation"].items():
            picks = [s["chosen"] for s in result["selection"][shift]]
            rows.append(
                [shift]
                + [f"{np.nanmean(values[v]):+.2f}" for v in VALIDATOR_FIELDS]
                + [", ".join(picks)]
            )
        every = {
            v: np.nanmean([x for values in result["validator_rank_correlation"].values() for x in values[v]])
            for v in VALIDATOR_FIELDS
        }
        rows.append(["**all**"] + [f"**{every[v]:+.2f}**" for v in VALIDATOR_FIELDS] + [""])
        sections.append(
            "Validators: Spearman rank correlation between each validator's score "
            "and the true target accuracy over the trained candidates (mean over "
            "seeds), and what `adapt` chose per seed:\n\n"
            + markdown_table(["shift", "SND", "DEV", "recommended chose"], rows)
        )
        for name, config in result.get("configs", {}).items():
            sections.append(
                f"### {path.stem}, config `{name}`\n\n{config.get('description', '')}\n\n"
                + shift_table(config["shifts"], _methods(config["shifts"]))
            )
    adapt_path = RESULTS / "adapt.json"
    if adapt_path.exists():
        result = json.loads(adapt_path.read_text())
        sections.append(
            f"## ADAPT {result.get('adapt', '')} (TF, tf_keras) on the same data\n\n"
            f"{result.get('description', '')}\n\n"
            + shift_table(result["shifts"], _methods(result["shifts"]))
        )
        for name, config in result.get("configs", {}).items():
            sections.append(
                f"### ADAPT, config `{name}`\n\n{config.get('description', '')}\n\n"
                + shift_table(config["shifts"], _methods(config["shifts"]))
            )
    sections.append(generative_section())
    write_readme(HERE, "Domain adaptation benchmark", "\n\n".join(sections))


def generative_section():
    """Markdown: generative.py's runs, one table per `results/generative-*.json`."""
    parts = [
        "## Generative (PixelDA)\n\n"
        "`keras_transfer.adaptation.build_pixelda` trained with plain `fit` by "
        "`generative.py`, against that harness's own source-only run with the same "
        "classifier (PixelDA's task classifier), data and seeds; these are the "
        "`generative` entries of `results/<backend>.json` above. Rerun: "
        "`python bench/domain_adaptation/generative.py --backend jax`."
    ]
    methods = ("source_only", GENERATIVE)
    for path in sorted(RESULTS.glob("generative-*.json")):
        payload = json.loads(path.read_text())
        config = payload["config"]
        rows = []
        for shift, cells in payload["shifts"].items():
            row = [shift] + [
                f"{_percent(cells[m])} (n={len(cells[m]['accuracies'])})" if m in cells else "not run"
                for m in methods
            ]
            if set(methods) <= set(cells):
                row.append(f"{100 * (cells[GENERATIVE]['mean'] - cells['source_only']['mean']):+.1f}")
            else:
                row.append("n/a")
            grid = RESULTS / f"generative-{shift}.png"
            row.append(f"![{shift}](results/{grid.name})" if grid.exists() else "")
            rows.append(row)
        missing = [
            s + (
                f" (its seed-0 grid was written: `results/generative-{s}.png`)"
                if (RESULTS / f"generative-{s}.png").exists() else ""
            )
            for s in config["shifts"] if s not in payload["shifts"]
        ]
        parts.append(
            f"### {payload['backend']} (`results/{path.name}`)\n\n"
            f"Target test accuracy, % (mean ± std over seeds {config['first_seed']}"
            f"..{config['first_seed'] + config['seeds'] - 1}); images "
            f"{config['image_size']} px, PixelDA {config['epochs']} epochs "
            f"(adversarial weight {config['adversarial_weight']}, content weight "
            f"{config['content_weight']}, instance noise {config['instance_noise']}), "
            f"source-only {config['source_epochs']} epochs.\n\n"
            + markdown_table(
                ["shift", "source_only (own)", "generative (PixelDA)",
                 "gain (points)", "translations (seed 0)"],
                rows,
            )
            + (f"\n\nNote: {payload['note']}" if payload.get("note") else "")
            + (
                "\n\nConfigured but without accuracies in this file (the run "
                f"stopped before they finished): {'; '.join(missing)}."
                if missing else ""
            )
        )
    if len(parts) == 1:
        parts.append("No results yet.")
    measured = {p.stem.removeprefix("generative-") for p in RESULTS.glob("generative-*.json")}
    absent = [b for b in BACKENDS if b not in measured]
    if absent:
        parts.append(
            f"Not measured: {', '.join(absent)} (no `results/generative-<backend>.json`; "
            "`generative` is null in their `shifts`)."
        )
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
