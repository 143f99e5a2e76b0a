"""`keras-transfer demo`: a complete, offline transfer-learning story in minutes.

Source domain `"digits"` (sklearn's handwritten digits), target domain
`"digits-m"` (the same kind of digits blended with colour photo patches, as
MNIST-M; see `keras_transfer.datasets.load_builtin`). A small CNN:

1. **source-only**: trained on labelled source digits, evaluated on the target.
2. **scratch**: trained from random weights on a few labelled target images.
3. **transfer**: the source-pretrained CNN fine-tuned on the same few labels
   (head on the frozen backbone first, then everything but BatchNorm).
4. **DANN** / **CORAL**: the source-pretrained CNN adapted to the target
   *without target labels* (`keras_transfer.adaptation`).

Writes to `out`: `metrics.json` (target test accuracy and macro-F1 of every
method), `curves.png`, `report.md` (the table), `model.keras` and the
exported, verified model of the best target method.
"""

import os
import shutil
import time

import keras
import numpy as np

from keras_transfer import _atomic
from keras_transfer import adaptation
from keras_transfer._atomic import atomic_path
from keras_transfer._atomic import write_json
from keras_transfer import freezing
from keras_transfer.cli import reports
from keras_transfer.datasets import load_builtin
from keras_transfer.datasets import paired_dataset
from keras_transfer.exporting import artifact_path
from keras_transfer.exporting import export
from keras_transfer.models import cnn_features
from keras_transfer.models import compile_args
from keras_transfer.schedules import DANNLambda

NUM_CLASSES = 10
# Source training: batches of 16 at 1e-3 reach 0.93 on the source test split
# (jax, 12 epochs); batches of 64 at 3e-3 ended at 0.77, swinging 0.49-0.94
# from epoch to epoch.
FULL = dict(
    image_size=32, filters=(16, 32, 64), labels_per_class=10, source_epochs=12,
    source_batch_size=16, source_learning_rate=1e-3,
    few_label_epochs=30, adapt_epochs=12, batch_size=64, few_label_batch_size=16,
)
QUICK = dict(
    image_size=16, filters=(8, 16, 32), labels_per_class=10, source_epochs=4,
    source_batch_size=64, source_learning_rate=3e-3,
    few_label_epochs=10, adapt_epochs=4, batch_size=64, few_label_batch_size=16,
)

# Measured with seed 0 on 2 shared CPU cores (docs/cli.md has the tables);
# 179 target test images, so +-0.05 between backends and seeds is noise.
EXPECTED = {
    "full": "source test ~0.92-0.93; target test: source-only ~0.16-0.24, scratch "
    "~0.26-0.32, transfer ~0.32-0.41, DANN ~0.32-0.40, CORAL ~0.32-0.44 "
    "(tensorflow and jax): the source model and the adapted ones above source-only, "
    "transfer above scratch by ~0.05-0.10.",
    "quick": "source test ~0.93; target test ~0.35-0.43 for every method (tensorflow): "
    "too short to separate them, run without --quick for the comparison.",
}


def run(out=os.path.join("runs", "demo"), quick=False, overwrite=False, seed=0):
    """Run the demo and write its report. Returns the metrics dict.

    The files are written into a hidden sibling of `out`, which replaces
    `out` whole at the end: a demo killed at any moment leaves the old `out`
    as it was (a new `out` stays empty), never a mix of two runs.

    Args:
        out: String. Output folder. Defaults to `"runs/demo"`.
        quick: Bool. A smaller, faster variant (fewer epochs, 16 px images).
        overwrite: Bool. Replace an existing non-empty `out` (at the end).
        seed: Int. Seeds weights, shuffling and the few-label subset.
    """
    final = reports.prepare_output_dir(out, overwrite)
    staging = _atomic.sibling(final, "incomplete")
    os.makedirs(staging)
    try:
        metrics = _run(staging, final, quick, seed)
        _atomic.crash_point("demo:swap")
        _atomic.replace(staging, final)
    finally:
        if os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    print(f"\nwrote {final}: metrics.json, curves.png, report.md, model.keras, "
          f"{os.path.basename(metrics['exported']['path'])} ({metrics['seconds']} s)")
    return metrics


def _run(out, final, quick, seed):
    """The demo, writing into the folder `out` that becomes `final`."""
    config = QUICK if quick else FULL
    keras.utils.set_random_seed(seed)
    started = time.time()
    size = config["image_size"]
    source = load_builtin("digits", "train", image_size=size, seed=seed)
    target = load_builtin("digits-m", "train", image_size=size, seed=seed)
    target_test = load_builtin("digits-m", "test", image_size=size, seed=seed)
    source_test = load_builtin("digits", "test", image_size=size, seed=seed)
    few = _few_labels(*target, config["labels_per_class"], seed)
    input_shape = (size, size, 3)
    fit_options = dict(batch_size=config["batch_size"], verbose=2)
    few_options = dict(fit_options, batch_size=config["few_label_batch_size"])
    results, f1_scores, histories, models = {}, {}, {}, {}

    _say(f"1/5 source-only: train on {len(source[0])} labelled source digits")
    pretrained = cnn_features(input_shape, config["filters"], name="source_features")
    model = _classifier(pretrained, input_shape, "source_only")
    _compile(model, config["source_learning_rate"])
    histories["source-only"] = model.fit(
        *source, epochs=config["source_epochs"], validation_data=target_test,
        **dict(fit_options, batch_size=config["source_batch_size"]),
    ).history
    results["source-only"], f1_scores["source-only"] = _scores(model, target_test)
    on_source = "source-only (source test)"
    results[on_source], f1_scores[on_source] = _scores(model, source_test)
    models["source-only"] = model

    _say(f"2/5 scratch: random init, {len(few[0])} labelled target images")
    model = _classifier(
        cnn_features(input_shape, config["filters"]), input_shape, "scratch"
    )
    _compile(model, 3e-3)
    histories["scratch"] = model.fit(
        *few, epochs=config["few_label_epochs"], validation_data=target_test, **few_options
    ).history
    results["scratch"], f1_scores["scratch"] = _scores(model, target_test)

    _say("3/5 transfer: the source model fine-tuned on the same few labels")
    features = _copy(pretrained)
    model = _classifier(features, input_shape, "transfer")
    # Same label space (digits 0-9): the source head is a better start than random.
    model.get_layer("logits").set_weights(
        models["source-only"].get_layer("logits").get_weights()
    )
    head_epochs = config["few_label_epochs"] // 3
    freezing.freeze(features)
    _compile(model, 3e-3)
    print(f"-- stage 1 (epochs 1-{head_epochs}): head only, backbone frozen, learning rate 3e-3")
    head = model.fit(*few, epochs=head_epochs, validation_data=target_test, **few_options)
    freezing.unfreeze(features)  # BatchNormalization stays frozen (inference mode).
    _compile(model, 1e-3)
    print(
        f"-- stage 2 (epochs {head_epochs + 1}-{config['few_label_epochs']}): backbone "
        "unfrozen (BatchNormalization stays frozen), learning rate 1e-3",
        flush=True,
    )
    tune = model.fit(
        *few, epochs=config["few_label_epochs"], initial_epoch=head_epochs,
        validation_data=target_test, **few_options,
    )
    histories["transfer"] = {k: head.history[k] + tune.history[k] for k in head.history}
    results["transfer"], f1_scores["transfer"] = _scores(model, target_test)
    models["transfer"] = model

    steps = config["adapt_epochs"] * int(np.ceil(len(target[0]) / (config["batch_size"] // 2)))
    for name, method in (("DANN", "dann"), ("CORAL", "coral")):
        step = 4 if method == "dann" else 5
        _say(f"{step}/5 {name}: adapt the pretrained CNN to unlabelled target images")
        adapted = _adapt(method, _copy(pretrained), input_shape, steps)
        adapted.fit(
            paired_dataset(
                source, target[0], batch_size=config["batch_size"], seed=seed
            ),
            epochs=config["adapt_epochs"],
            validation_data=None,
            verbose=2,
        )
        histories[name] = adapted.history.history
        classifier = adapted.classifier
        _compile(classifier, 1e-3)
        results[name], f1_scores[name] = _scores(classifier, target_test)
        models[name] = classifier

    best = max(("transfer", "DANN", "CORAL"), key=results.get)
    export_path = _save_and_export(models[best], out, probe=target_test[0][:8])
    metrics = {
        "backend": keras.backend.backend(),
        "quick": quick,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "target_test_accuracy": {k: v for k, v in results.items() if "(" not in k},
        "target_test_macro_f1": {k: v for k, v in f1_scores.items() if "(" not in k},
        "source_test_accuracy": results["source-only (source test)"],
        "source_test_macro_f1": f1_scores["source-only (source test)"],
        "exported": {"method": best, "path": os.path.join(final, os.path.relpath(export_path, out))},
        "seconds": round(time.time() - started, 1),
        "history": histories,
    }
    write_json(os.path.join(out, "metrics.json"), metrics)
    reports.plot_curves(
        os.path.join(out, "curves.png"),
        histories,
        "digits -> digits-m (val = target test; DANN/CORAL: label loss on source)",
        markers=[(head_epochs, "transfer: backbone unfrozen")],
    )
    table = _table(results, f1_scores, best, len(few[0]))
    with atomic_path(os.path.join(out, "report.md")) as path, open(path, "w") as f:
        f.write(f"# keras-transfer demo ({keras.backend.backend()})\n\n{table}\n")
    print("\n" + table)
    print(
        f"\nreached: source model {results['source-only (source test)']:.3f} on the "
        f"source test split; on the target, transfer {results['transfer']:.3f} vs "
        f"scratch {results['scratch']:.3f} with the same {len(few[0])} labels, best "
        f"without labels {max(results['DANN'], results['CORAL']):.3f}.\n"
        f"expected: {EXPECTED['quick' if quick else 'full']}"
    )
    return metrics


def _say(message):
    print(f"\n== {message}", flush=True)


def _few_labels(x, y, per_class, seed):
    """`per_class` labelled examples of every class, drawn stratified by `seed`."""
    from sklearn.model_selection import train_test_split

    x, _, y, _ = train_test_split(
        x, y, train_size=per_class * NUM_CLASSES, stratify=y, random_state=seed
    )
    return x, y


def _classifier(features, input_shape, name):
    inputs = keras.Input(input_shape, name="image")
    outputs = keras.layers.Dense(NUM_CLASSES, name="logits")(features(inputs))
    return keras.Model(inputs, outputs, name=name)


def _copy(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _compile(model, learning_rate):
    model.compile(**compile_args(keras.optimizers.Adam(learning_rate)))


def _adapt(method, features, input_shape, steps):
    head = keras.layers.Dense(NUM_CLASSES, name="logits")
    optimizer = keras.optimizers.Adam(1e-3)
    if method == "dann":
        return adaptation.build_dann(
            features,
            head,
            discriminator=adaptation.default_discriminator(units=(64,), dropout=0.2),
            hp_lambda=DANNLambda(total_steps=steps),
            optimizer=optimizer,
            input_shape=input_shape,
            name="dann",
        )
    return adaptation.build_coral(
        features, head, domain_loss_weight=1.0, optimizer=optimizer,
        input_shape=input_shape, name="coral",
    )


def _scores(model, data):
    """Accuracy and macro-F1 of one evaluation (the metrics of `compile_args`)."""
    scores = model.evaluate(*data, return_dict=True, verbose=0)
    return float(scores["accuracy"]), float(scores["macro_f1"])


def _save_and_export(model, out, probe):
    with atomic_path(os.path.join(out, "model.keras")) as path:
        model.save(path)
    return export(model, artifact_path(out), overwrite=True, probe=probe).path


def _table(results, f1_scores, best, labelled):
    rows = [
        ("source-only", "source labels only"),
        ("scratch", f"{labelled} target labels, random init"),
        ("transfer", f"{labelled} target labels, source model fine-tuned"),
        ("DANN", "no target labels, adversarial alignment"),
        ("CORAL", "no target labels, covariance alignment"),
    ]
    lines = [
        "| method | target data used | target test accuracy | target test macro-F1 |",
        "|---|---|---|---|",
    ]
    for name, used in rows:
        mark = " (exported)" if name == best else ""
        lines.append(
            f"| {name}{mark} | {used} | {results[name]:.3f} | {f1_scores[name]:.3f} |"
        )
    lines.append(
        f"\nSource-only model on the source test split: "
        f"{results['source-only (source test)']:.3f}."
    )
    return "\n".join(lines)
