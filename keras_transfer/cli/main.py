"""`keras-transfer`: list, inspect, fit, evaluate, predict with and export zoo models.

Keras reads `KERAS_BACKEND` once, when it is first imported, so this module
imports nothing from Keras at top level: `main` sets the backend from
`--backend` first, then imports the commands' dependencies.
"""

import argparse
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
MODEL_FILE = "model.keras"
PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def main(argv=None):
    """Entry point of the `keras-transfer` console script. Returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.backend:
        _set_backend(args.backend)
    try:
        return args.run(args) or 0
    except (ValueError, ImportError, FileNotFoundError) as error:
        print(f"keras-transfer {args.command}: error: {error}", file=sys.stderr)
        return 2


def _set_backend(backend):
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise SystemExit(
                f"keras-transfer: error: Keras is already imported with the "
                f"{keras.backend.backend()!r} backend; cannot switch to {backend!r}."
            )
    os.environ["KERAS_BACKEND"] = backend


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-transfer",
        description="Transfer learning for Keras 3: a model zoo, training and export.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else Keras' own default).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="List the zoo's tasks.")
    listing.add_argument("--filter", default="*", help="fnmatch pattern, e.g. 'image_*'.")
    listing.set_defaults(run=_list)

    info = commands.add_parser("info", help="Show a task's metadata and recipe.")
    info.add_argument("task")
    info.set_defaults(run=_info)

    fit = commands.add_parser("fit", help="Train a zoo task and write model, report, export.")
    fit.add_argument("task")
    _data_arguments(fit)
    fit.add_argument("--epochs", type=int, default=10)
    fit.add_argument("--out", required=True, help="Output folder of the run.")
    fit.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet' (pretrained; may download), 'none', or a weights path.",
    )
    fit.add_argument(
        "--num-classes", type=int, help="Checked against the dataset; default: read from it."
    )
    fit.add_argument(
        "--validation-split",
        default="test",
        help="Split used for validation (early stopping) and the final metrics.",
    )
    fit.add_argument("--overwrite", action="store_true", help="Replace files in --out.")
    fit.add_argument(
        "--cache",
        metavar="DIR",
        help="Keep the frozen backbone's features in DIR (.npy shards; a later run "
        "reuses them). Only for tasks whose backbone stays frozen "
        "(feature_extraction/*), which otherwise cache in memory.",
    )
    fit.add_argument(
        "--no-cache",
        action="store_true",
        help="Train a frozen-backbone task end to end, with augmentation.",
    )
    fit.add_argument(
        "--precision",
        choices=tuple(PRECISION_POLICIES),
        default="float32",
        help="Compute precision; bfloat16 and float16 are mixed (variables stay float32).",
    )
    fit.set_defaults(run=_fit)

    evaluate = commands.add_parser("evaluate", help="Evaluate a saved model on a dataset.")
    evaluate.add_argument("model", help="A .keras file or a `fit` output folder.")
    _data_arguments(evaluate)
    evaluate.add_argument("--split", default="test")
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="Classify image files with a saved model.")
    predict.add_argument("model", help="A .keras file or a `fit` output folder.")
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="Image files.")
    predict.add_argument("--top", type=int, default=3)
    predict.set_defaults(run=_predict)

    export = commands.add_parser(
        "export", help="Export a saved model (SavedModel; ONNX on torch), verified."
    )
    export.add_argument("model", help="A .keras file or a `fit` output folder.")
    export.add_argument("--out", required=True, help="Export path.")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(run=_export)

    demo = commands.add_parser(
        "demo", help="Offline transfer-learning story on digits -> digits-m."
    )
    demo.add_argument(
        "--out",
        help="Output folder (default: a new runs/demo-<date>-<time>, so a "
        "second demo never meets the first one's files).",
    )
    demo.add_argument("--quick", action="store_true", help="Smaller, faster variant.")
    demo.add_argument("--overwrite", action="store_true")
    demo.set_defaults(run=_demo)
    return parser


def _data_arguments(parser):
    parser.add_argument(
        "--data",
        required=True,
        help="A built-in ('digits', 'digits-m', 'digits-rotated', 'digits-noisy', "
        "'digits-colored'), 'tfds:<name>' or 'folder:<path>'.",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, help="Default: the task's input size.")


def _list(args):
    from keras_transfer import zoo
    from keras_transfer.zoo import registry

    names = zoo.list_tasks(args.filter)
    if not names:
        print(f"No task matches {args.filter!r}.")
        return 1
    width = max(len(n) for n in names)
    for name in names:
        spec = zoo.get_task(name)
        missing = registry.missing_requirements(spec)
        note = f"  [needs {', '.join(missing)}]" if missing else ""
        print(f"{name:<{width}}  {spec.description}{note}")
    return 0


def _info(args):
    import dataclasses

    from keras_transfer import zoo
    from keras_transfer.zoo import registry

    spec = zoo.get_task(args.task)
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.name == "recipe":
            value = ", ".join(
                f"{f.name}={getattr(value, f.name)!r}" for f in dataclasses.fields(value)
            )
        print(f"{field.name:>15}: {value}")
    missing = registry.missing_requirements(spec)
    print(f"{'installed':>15}: {'yes' if not missing else 'no, needs ' + ', '.join(missing)}")
    return 0


def _fit(args):
    import keras

    from keras_transfer import datasets
    from keras_transfer import zoo
    from keras_transfer.cli import reports

    spec = zoo.get_task(args.task)
    _check_task_input(spec, datasets.describe(args.data, "train"))
    cache = _feature_cache(spec, args)
    out = reports.prepare_output_dir(args.out, args.overwrite)
    image_size = args.image_size or spec.input_shape[0]
    channels = spec.input_shape[-1]
    # A cache holds one view of each image, read in a fixed order.
    fixed = {"augment": False, "shuffle": False} if cache is not None else {}
    train, info = _load_data(
        args.data, "train", image_size, args.batch_size, args.num_classes, channels, **fixed
    )
    validation, _ = _load_data(
        args.data, args.validation_split, image_size, args.batch_size, info.num_classes, channels
    )
    weights = None if args.weights.lower() == "none" else args.weights
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICIES[args.precision])
    try:
        model = zoo.build(
            args.task,
            info.num_classes,
            weights=weights,
            input_shape=None if spec.preset_fixes_inputs else info.image_shape,
        )
    finally:
        keras.config.set_dtype_policy(policy)
    callbacks = zoo.recipe(args.task, epochs=args.epochs)
    if cache is None:
        history = model.fit(
            train, validation_data=validation, epochs=args.epochs, callbacks=callbacks
        )
    else:
        from keras_transfer.features import fit_cached

        history = fit_cached(
            model,
            train,
            validation_data=validation,
            cache_dir=cache or None,
            batch_size=args.batch_size,
            epochs=args.epochs,
            callbacks=callbacks,
        )
    test_metrics = model.evaluate(validation, return_dict=True, verbose=0)
    model.save(os.path.join(out, MODEL_FILE))
    probe = next(iter(validation))[0][:2].numpy()
    exported = _export_model(model, _artifact_path(out), overwrite=True, probe=probe)
    reports.write_json(
        os.path.join(out, "metrics.json"),
        {
            "task": args.task,
            "data": args.data,
            "backend": _backend(),
            "num_classes": info.num_classes,
            "input_shape": list(info.image_shape),
            "epochs_run": len(history.epoch),
            "precision": args.precision,
            "features_cache": None if cache is None else (cache or "memory"),
            "history": history.history,
            args.validation_split: test_metrics,
            "export": exported,
        },
    )
    reports.plot_curves(
        os.path.join(out, "curves.png"), {args.task: history.history}, args.task
    )
    print(f"{args.validation_split}: {test_metrics}")
    print(f"wrote {out}: {MODEL_FILE}, metrics.json, curves.png, {os.path.basename(exported)}")
    return 0


def _evaluate(args):
    model = _load_model(args.model)
    data, _ = _load_data(args.data, args.split, _model_image_size(model), args.batch_size)
    metrics = model.evaluate(data, return_dict=True)
    print(metrics)
    return 0


def _predict(args):
    import numpy as np
    from PIL import Image

    import keras

    model = _load_model(args.model)
    size = _model_image_size(model)
    images = []
    for path in args.inputs:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Input image {path!r} does not exist.")
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB").resize((size, size))))
    logits = model.predict(np.stack(images).astype("uint8"), verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    for path, row in zip(args.inputs, probabilities):
        top = np.argsort(row)[::-1][: args.top]
        ranked = ", ".join(f"class {i}: {row[i]:.3f}" for i in top)
        print(f"{path}: {ranked}")
    return 0


def _export(args):
    model = _load_model(args.model)
    path = _export_model(model, args.out, overwrite=args.overwrite)
    print(f"exported and verified: {path}")
    return 0


def _demo(args):
    import time

    from keras_transfer.cli import demo

    out = args.out or os.path.join("runs", time.strftime("demo-%Y%m%d-%H%M%S"))
    demo.run(out=out, quick=args.quick, overwrite=args.overwrite)
    return 0


def _artifact_path(folder):
    from keras_transfer.exporting import artifact_path

    return artifact_path(folder)


def _export_model(model, path, overwrite, probe=None):
    from keras_transfer.exporting import export

    result = export(model, path, overwrite=overwrite, probe=probe)
    return result.path


def _backend():
    import keras

    return keras.backend.backend()


def _load_model(path):
    import keras

    import keras_transfer  # noqa: F401  (registers the package's serializable objects)

    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No saved model at {path!r}. Pass a `.keras` file or a `keras-transfer "
            "fit` output folder."
        )
    return keras.saving.load_model(path)


def _model_image_size(model):
    shape = model.inputs[0].shape
    if len(shape) != 4:
        raise ValueError(
            f"This command needs an image model (inputs of rank 4). Received a "
            f"model with input shape {tuple(shape)}."
        )
    return shape[1]


def _load_data(spec, split, image_size, batch_size, num_classes=None, channels=None, **options):
    """`(tf.data.Dataset, DatasetInfo)` of a dataset spec, checked against a task."""
    from keras_transfer import datasets

    return datasets.load(
        spec,
        split=split,
        image_size=image_size,
        channels=channels,
        batch_size=batch_size,
        num_classes=num_classes,
        with_info=True,
        **options,
    )


def _feature_cache(spec, args):
    """`None` (train end to end), `""` (cache in memory) or the `--cache` folder."""
    if args.cache and args.no_cache:
        raise ValueError("--cache and --no-cache exclude each other; pass one.")
    if not spec.caches_features:
        if args.cache:
            raise ValueError(
                f"Invalid value received for argument `--cache`: task {spec.name!r} "
                f"trains its backbone (trainable={spec.trainable!r}, unfreeze stages "
                f"{spec.recipe.unfreeze_stages}), so cached features would go stale. "
                f"Use a feature_extraction/* task, or drop --cache. Received: --cache={args.cache}"
            )
        return None
    if args.no_cache:
        return None
    print(
        f"{spec.name}: the backbone stays frozen, so its features are computed once "
        f"and cached ({args.cache or 'in memory'}). Training images are not augmented "
        "(a cache holds one view per image); --no-cache trains end to end with augmentation."
    )
    return args.cache or ""


def _check_task_input(spec, info):
    task_shape = tuple(spec.input_shape)
    if len(task_shape) != len(info.image_shape):
        raise ValueError(
            f"Dataset {info.name!r} yields images of shape {info.image_shape}, "
            f"but task {spec.name!r} takes inputs of shape {task_shape}."
        )
    info.check(input_shape=task_shape)


if __name__ == "__main__":
    sys.exit(main())
