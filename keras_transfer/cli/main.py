"""`keras-transfer`: list, inspect, fit, evaluate, predict with and export zoo models.

Keras reads `KERAS_BACKEND` once, when it is first imported, so this module
imports nothing from Keras at top level: `main` sets the backend from
`--backend` first, then imports the commands' dependencies.
"""

import argparse
import contextlib
import importlib.util
import os
import re
import sys
import warnings

BACKENDS = ("tensorflow", "jax", "torch")
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
PRECISION_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
REPORT_FILE = "report.html"


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def main(argv=None):
    """Entry point of the `keras-transfer` console script. Returns the exit code.

    Expected failures (bad flags, files, data or values) print one line
    naming what was wrong and return 2.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _set_backend(args.backend)
        with _quiet(not args.verbose), _warnings_as_lines(args.command):
            code = args.run(args) or 0
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader closed the pipe (`keras-transfer list | head -1`): stop
        # quietly. Python flushes stdout again at exit, so point it at
        # devnull (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, ImportError, OSError) as error:
        print(f"keras-transfer {args.command}: error: {_in_flags(error)}", file=sys.stderr)
        return 2


# Library arguments the CLI fills from a flag: its errors name the flag.
ARGUMENT_FLAGS = {
    "spec": "--data",
    "num_classes": "--num-classes",
    "epochs": "--epochs",
    "val_fraction": "--val-fraction",
    "test_fraction": "--test-fraction",
    "batch_size": "--batch-size",
    "image_size": "--image-size",
}


def _in_flags(error):
    """The library's error message with its argument names written as flags.

    `Invalid value received for argument `spec`... Received: spec='x'`
    becomes `Invalid value received for `--data`... Received: --data 'x'`.
    """
    text = str(error)
    for name, flag in ARGUMENT_FLAGS.items():
        text = text.replace(f"argument `{name}`", f"`{flag}`")
        text = re.sub(rf"\b(Received: (?:.*, )?){name}=", rf"\g<1>{flag} ", text)
    return text


# Warnings known to be harmless in what the commands do; `--verbose` shows them.
HARMLESS_WARNINGS = (
    # `datasets.load` shuffles the tf.data pipeline itself; Keras' `fit`
    # says its own `shuffle=True` default does not apply (epoch_iterator.py).
    r"`shuffle=True` was passed, but will be ignored",
    # torch.jit tracing during ONNX export (torch/jit/_trace.py, TracerWarning):
    # shape checks traced as constants, fixed-size inputs make them exact.
    r"Converting a tensor to a Python",
    r"torch\.tensor results are registered as constants in the trace",
    r"Iterating over a tensor might cause the trace to be incorrect",
)
# Python loggers whose messages below ERROR are chatter for a CLI user, and
# the C++ log level of TensorFlow (0: all .. 3: none; 3 also hides XLA's
# "failed call to cuInit" and absl's "All log messages before
# absl::InitializeLog()" lines on machines without a GPU).
CHATTY_LOGGERS = ("absl", "tensorflow", "jax._src.xla_bridge")


@contextlib.contextmanager
def _quiet(enabled):
    """The CLI's quiet default: TF/absl/CUDA log chatter and known-harmless
    warnings (`HARMLESS_WARNINGS`, each matched by its message) are not shown.
    Keras' progress bars and every other warning are."""
    if not enabled:
        yield
        return
    import logging

    with contextlib.suppress(ImportError):
        import absl.logging  # noqa: F401  (so "absl" is absl's own logger)
    saved_env = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # Read when TF is imported.
    if "tensorflow" not in sys.modules:
        with _c_stderr_to_devnull():
            # TF's absl C++ logging prints "All log messages before
            # absl::InitializeLog()..." and the cudart lines at import,
            # whatever TF_CPP_MIN_LOG_LEVEL says (abseil/abseil-cpp#1718).
            # Without TensorFlow, the command that needs it says so.
            with contextlib.suppress(ImportError):
                import tensorflow  # noqa: F401
    # A filter, not a level: absl resets its logger's level when its flags
    # are parsed.
    def errors_only(record):
        return record.levelno >= logging.ERROR

    loggers = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    for logger in loggers:
        logger.addFilter(errors_only)
    try:
        with warnings.catch_warnings():
            for message in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(errors_only)
        if saved_env is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


@contextlib.contextmanager
def _c_stderr_to_devnull():
    """Points file descriptor 2 (what C/C++ code writes to) at /dev/null."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextlib.contextmanager
def _warnings_as_lines(command):
    """Shows keras-transfer's own warnings as one `warning:` line each."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if os.path.abspath(filename).startswith(package):
            print(f"keras-transfer {command}: warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _set_backend(backend):
    if backend is None:
        chosen = os.environ.get("KERAS_BACKEND")
        if chosen is not None and chosen not in BACKENDS:
            raise ValueError(
                f"KERAS_BACKEND={chosen!r} is not a Keras backend this tool "
                f"runs on. Expected one of {', '.join(BACKENDS)} (or pass "
                "`--backend`)."
            )
        return
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise ValueError(
                f"Keras is already imported with the "
                f"{keras.backend.backend()!r} backend; cannot switch to {backend!r}."
            )
    os.environ["KERAS_BACKEND"] = backend


def _parser():
    parser = _Parser(
        prog="keras-transfer",
        description="Transfer learning for Keras 3: a model zoo, training and export.",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else Keras' own default).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="Show TensorFlow/absl/CUDA log lines and known-harmless warnings "
        "(hidden by default).",
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
    fit.add_argument("--epochs", type=_positive_int, default=10)
    fit.add_argument("--out", required=True, help="Output folder of the run.")
    fit.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet' (pretrained; may download), 'none', or a weights path.",
    )
    fit.add_argument(
        "--num-classes",
        type=_positive_int,
        help="Checked against the dataset; default: read from it.",
    )
    fit.add_argument(
        "--train-split",
        help="Split to train on (default: 'train'; a 'folder:' without split "
        "sub-folders: the folder itself).",
    )
    fit.add_argument(
        "--test-split",
        help="Split scored once after training, never used for validation "
        "(default: 'test', else --test-fraction of the training data, carved "
        "stratified by class).",
    )
    fit.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="Fraction of the training data held out as the test split when "
        "the dataset has no 'test' split (default: 0.2).",
    )
    fit.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="Fraction of the training split held out for validation (early stopping), "
        "stratified by class, unless the dataset has a 'validation' split (default: 0.1).",
    )
    fit.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace --out (or an interrupted run of it) once the new run is complete.",
    )
    fit.add_argument(
        "--resume",
        action="store_true",
        help="Continue an interrupted run of --out from its last completed epoch "
        "(same flags as the interrupted run).",
    )
    fit.add_argument(
        "--tensorboard",
        action="store_true",
        help="Also log to <out>/tensorboard (Keras' TensorBoard callback; "
        "view with `tensorboard --logdir <out>/tensorboard`).",
    )
    fit.add_argument(
        "--seed", type=_non_negative_int, default=0, help="Seeds the validation split, weights, shuffling, augmentation."
    )
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
    evaluate.add_argument(
        "--split",
        help="Split to evaluate (default: the test split the run in MODEL "
        "held out of --data, else 'test').",
    )
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="Classify image files (or, with a text model, texts) with a saved model."
    )
    predict.add_argument("model", help="A .keras file or a `fit` output folder.")
    predict.add_argument(
        "inputs", nargs="+", metavar="INPUT",
        help="Image files; for a text model, texts (a path to a file reads the file).",
    )
    predict.add_argument("--top", type=_positive_int, default=3)
    predict.set_defaults(run=_predict)

    export = commands.add_parser(
        "export", help="Export a saved model as a SavedModel (any backend), verified."
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
        "'digits-colored', 'digits-combined', 'digits-sensor'), 'tfds:<name>', "
        "'folder:<path>' (class sub-folders, with or without split folders) or "
        "'csv:<file>' (text,label rows, for text tasks).",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument(
        "--image-size", type=_positive_int, help="Default: the task's (or model's) input size."
    )
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="'folder:' data: leave out (and count) images that cannot be decoded.",
    )


def _positive_int(text):
    return _int_at_least(text, 1)


def _non_negative_int(text):
    return _int_at_least(text, 0)


def _int_at_least(text, minimum):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, received {text!r}")
    return value


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
    activation = spec.head.get("activation")
    output = "logits" if activation is None else f"{activation} probabilities"
    print(f"{'output':>15}: {output} (ClassificationHead, activation={activation})")
    missing = registry.missing_requirements(spec)
    print(f"{'installed':>15}: {'yes' if not missing else 'no, needs ' + ', '.join(missing)}")
    return 0


def _fit(args):
    import keras

    from keras_transfer import datasets
    from keras_transfer import zoo
    from keras_transfer.cli import splits
    from keras_transfer.cli.runs import Run

    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ImportError(
            "--tensorboard needs the tensorboard package: `pip install tensorboard` "
            "(or `keras-transfer[tensorboard]`)."
        )
    spec = zoo.get_task(args.task)
    plan = splits.plan_splits(
        args.data, args.train_split, args.test_split, args.val_fraction, args.seed,
        args.test_fraction,
    )
    described = datasets.describe(args.data, plan.train)
    _check_task_input(spec, described)
    _check_num_classes_flag(args.num_classes, described)
    cache = _feature_cache(spec, args)
    callbacks = zoo.recipe(args.task, epochs=args.epochs)  # Checks the run length.
    form = _data_form(spec, args.image_size or spec.input_shape[0])
    # A cache holds one view of each image, read in a fixed order.
    sampling = (
        {"augment": False, "shuffle": False}
        if cache is not None
        else {"augment": None if _is_text(spec) else True, "shuffle": True}
    )
    train, info = _load_data(
        args, plan.train, indices=plan.train_indices, **sampling, **form,
    )
    validation, validation_info = _load_data(
        args, plan.validation, num_classes=info.num_classes,
        indices=plan.validation_indices, augment=False, shuffle=False, **form,
    )
    validation_info.check(class_names=info.class_names)
    test, test_info = _load_data(
        args, plan.test, num_classes=info.num_classes,
        indices=plan.test_indices, augment=False, shuffle=False, **form,
    )
    test_info.check(class_names=info.class_names)
    keras.utils.set_random_seed(args.seed)
    model = _build_model(args, spec, info)  # Before the run folder: it may download.
    run = Run.start(
        args.out, _run_settings(args), overwrite=args.overwrite, resume=args.resume
    )
    try:
        if not run.finished:
            _train(args, model, run, plan, (train, validation, test, info), callbacks, cache)
    except Exception as error:
        # A run that failed (not one that was killed or interrupted) is not
        # resumable unless it has committed epochs to continue from.
        if isinstance(error, _Diverged) or not run.has_checkpoint():
            run.discard()
        elif isinstance(error, (ValueError, OSError)):
            raise ValueError(
                f"{error} (The epochs done so far are kept in {run.path!r}: fix "
                "the cause and pass `--resume`.)"
            ) from error
        raise
    out = run.finish()
    files = sorted(os.listdir(out))
    print(f"wrote {out}: {', '.join(files)}")
    print(f"report: {os.path.join(out, REPORT_FILE)} (open it in a browser)")
    return 0


def _run_settings(args):
    """What a resumed run must share with the interrupted one."""
    return {
        "backend": _backend(),
        **{
            name: getattr(args, name)
            for name in (
                "task", "data", "epochs", "weights", "num_classes", "train_split",
                "test_split", "val_fraction", "test_fraction", "batch_size", "image_size",
                "skip_bad_images", "seed", "cache", "no_cache", "precision",
            )
        },
    }


def _check_num_classes_flag(num_classes, info):
    if num_classes is not None and num_classes != info.num_classes:
        raise ValueError(
            f"Dataset {info.name!r} has {info.num_classes} classes "
            f"({', '.join(info.class_names[:10])}{', ...' if info.num_classes > 10 else ''}) "
            f"but --num-classes is {num_classes}: pass --num-classes "
            f"{info.num_classes}, or leave it out to read it from the data."
        )


def _build_model(args, spec, info):
    """The task's model for the data, carrying its class names.

    A failed download of pretrained weights becomes one line naming the
    flags that run without them.
    """
    from keras_transfer import zoo

    import keras

    weights = None if args.weights.lower() == "none" else args.weights
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISION_POLICIES[args.precision])
    try:
        return zoo.build(
            args.task,
            info.num_classes,
            weights=weights,
            input_shape=None if spec.preset_fixes_inputs else info.image_shape,
            class_names=info.class_names,
        )
    except Exception as error:
        # keras.utils.get_file raises a bare `Exception("URL fetch failure
        # on ...")`; KerasHub/kagglehub raise their own connection errors.
        text = f"{type(error).__name__}: {error}"
        offline = ("URL fetch failure", "ConnectionError", "Failed to resolve", "urlopen error")
        if weights is None or not any(marker in text for marker in offline):
            raise
        raise ValueError(
            f"Could not download the pretrained weights of {args.task!r} "
            f"(--weights {args.weights}; {text.splitlines()[0][:200]}). Offline, "
            "pass --weights none (random initialisation) or --weights PATH "
            "(a local weights file)."
        ) from error
    finally:
        keras.config.set_dtype_policy(policy)


def _train(args, model, run, plan, data, callbacks, cache):
    """Trains, scores the test split once, saves and exports into `run`.

    `plan` is the `SplitPlan`, `data` is `(train, validation, test, info)`,
    `callbacks` the task's recipe and `cache` what `_feature_cache` chose.
    """
    import keras

    from keras_transfer import datasets
    from keras_transfer._atomic import atomic_path
    from keras_transfer._atomic import write_json
    from keras_transfer.callbacks import StagedUnfreezing
    from keras_transfer.cli import reports
    from keras_transfer.cli import scoring

    train, validation, test, info = data
    if not any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks):
        callbacks.append(keras.callbacks.TerminateOnNaN())
    for callback in callbacks:  # Print the events: stages, early stopping, best epoch.
        if isinstance(callback, (StagedUnfreezing, keras.callbacks.EarlyStopping)):
            callback.verbose = 1
    if args.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=run.file("tensorboard")))
    commit = run.checkpoint_callbacks(callbacks)
    callbacks += commit
    with _naming_data_errors(args, *dict.fromkeys((plan.train, plan.validation, plan.test))):
        if cache is None:
            callbacks.append(datasets.EpochSync(train))
            model.fit(train, validation_data=validation, epochs=args.epochs, callbacks=callbacks)
        else:
            from keras_transfer.features import fit_cached

            fit_cached(
                model,
                train,
                validation_data=validation,
                cache_dir=cache or None,
                batch_size=args.batch_size,
                epochs=args.epochs,
                callbacks=callbacks,
                seed=args.seed,
            )
        history = commit[-1].history
        _check_finite(history)
        warnings_found = _learning_warnings(history, info.num_classes, args)
        for warning in warnings_found:
            print(f"warning: {warning}")
        validation_metrics = model.evaluate(validation, return_dict=True, verbose=0)
        test_metrics, samples = scoring.score_once(model, test, info.num_classes)
        probe = next(iter(validation))[0][:2].numpy()
    with atomic_path(run.file(MODEL_FILE)) as path:
        model.save(path)
    exported = _export_model(model, _artifact_path(run.path), overwrite=True, probe=probe)
    splits_report = plan.report()
    splits_report["test"]["examples"] = test_metrics["examples"]
    write_json(
        run.file(METRICS_FILE),
        {
            "task": args.task,
            "data": args.data,
            "backend": _backend(),
            "seed": args.seed,
            "num_classes": info.num_classes,
            "class_names": list(info.class_names),
            "input_shape": list(info.image_shape),
            "splits": splits_report,
            "precision": args.precision,
            "features_cache": None if cache is None else (cache or "memory"),
            "epochs_run": len(history.get("loss", [])),
            "history": history,
            "warnings": warnings_found,
            "validation": validation_metrics,
            "test": test_metrics,
            "export": os.path.join(os.path.abspath(args.out), os.path.basename(exported)),
        },
    )
    stages = [
        (epoch, f"unfreeze {selector!r}")
        for c in callbacks if isinstance(c, StagedUnfreezing)
        for epoch, (selector, _) in sorted(c.stages.items())
        if 0 < epoch < len(history.get("loss", []))
    ]
    reports.plot_curves(run.file("curves.png"), {args.task: history}, args.task, stages)
    scoring.plot_confusion_matrix(
        run.file("confusion_matrix.png"),
        test_metrics["confusion_matrix"],
        info.class_names,
        f"{args.task} on {args.data} {_split_words(plan)} (evaluated once)",
    )
    images = getattr(samples[0], "ndim", 0) == 4  # Text tasks have no picture grid.
    if images:
        reports.plot_predictions(run.file("predictions.png"), *samples, info.class_names)
    best = _best_epoch(history, callbacks)
    if best is not None:
        print(f"best epoch: {best[0]} ({best[1]} {best[2]:.4f}); the model keeps its weights")
    print(
        f"test: {_split_words(plan)} ({test_metrics['examples']} examples, evaluated once): "
        f"accuracy {test_metrics['accuracy']:.4f}, macro-F1 {test_metrics['macro_f1']:.4f}"
    )
    _write_fit_report(
        run, args, plan, history, validation_metrics, test_metrics, best, bool(stages),
        images,
    )


def _best_epoch(history, callbacks):
    """`(1-based epoch, monitor, value)` whose weights early stopping kept, or `None`."""
    import keras

    for callback in callbacks:
        if (
            isinstance(callback, keras.callbacks.EarlyStopping)
            and callback.restore_best_weights
            and callback.best_weights is not None
        ):
            return callback.best_epoch + 1, callback.monitor, float(callback.best)
    return None


def _write_fit_report(
    run, args, plan, history, validation_metrics, test_metrics, best, staged, images
):
    """`report.html`: the numbers (with the split each comes from) and the plots."""
    from keras_transfer.cli.report_html import write_report

    splits = plan.report()
    validation = splits["validation"]
    validation_source = (
        f"{validation['fraction']:.0%} of {_train_words(plan)}, stratified, seed {args.seed}"
        if validation.get("carved_from_train")
        else f"split {validation['split']!r}"
    )
    last = {k: v[-1] for k, v in history.items() if v and not k.startswith("val_")}
    rows = [
        {"numbers from": "train (last epoch, running average)",
         "data": _train_words(plan), **_scores_row(last)},
        {"numbers from": "validation (after training)", "data": validation_source,
         **_scores_row(validation_metrics)},
        {"numbers from": "test (evaluated once, after training)",
         "data": f"{_split_words(plan)}, {test_metrics['examples']} examples",
         **_scores_row(test_metrics)},
    ]
    run_table = {
        "task": args.task,
        "data": args.data,
        "backend": _backend(),
        "epochs run": f"{len(history.get('loss', []))} of {args.epochs}",
        "weights kept": (
            f"epoch {best[0]} (best {best[1]} {best[2]:.4g})" if best else "last epoch"
        ),
        "seed": args.seed,
    }
    write_report(
        run.file(REPORT_FILE),
        f"keras-transfer fit {args.task} on {args.data}",
        [
            ("Scores", rows),
            ("Run", run_table),
            (
                "Curves" + (" (dotted lines: unfreezing stages)" if staged else ""),
                run.file("curves.png"),
            ),
            (f"Confusion matrix, test: {_split_words(plan)}", run.file("confusion_matrix.png")),
        ]
        + (
            [("Test predictions: predicted (true), mistakes in red", run.file("predictions.png"))]
            if images
            else []
        ),
    )


def _scores_row(metrics):
    return {name: metrics.get(name, "") for name in ("loss", "accuracy", "macro_f1")}


def _train_words(plan):
    """The training split of `plan`, in words."""
    return "all the data" if plan.train is None else f"split {plan.train!r}"


def _split_words(plan):
    """The test split of `plan`, in words."""
    if plan.test_indices is None:
        return f"split {plan.test!r}"
    source = "the data" if plan.test is None else f"split {plan.test!r}"
    return f"{plan.test_fraction:g} of {source}, held out"


class _Diverged(ValueError):
    """The loss became NaN or infinite: nothing of the run is worth keeping."""


def _learning_warnings(history, num_classes, args):
    """What a finished run should not report silently: a model that never learned.

    Uniform predictions cost exactly ln(num_classes) in cross-entropy, with or
    without label smoothing; a run whose training loss never fell below that
    ended where it started (e.g. a deep backbone at random initialisation,
    whose features are all but zero).
    """
    import math

    losses = history.get("loss", [])
    chance = math.log(num_classes)
    if not losses or min(losses) < 0.99 * chance:
        return []
    hint = (
        " With --weights none a deep backbone starts near-silent (its random"
        " features are ~0): use pretrained weights (--weights imagenet or a"
        " weights file), or a small task such as test/tiny_cnn."
        if args.weights in (None, "none") else " Try more epochs, data, or a higher learning rate."
    )
    return [
        f"the training loss never fell below chance level (ln {num_classes} = "
        f"{chance:.4f}; lowest {min(losses):.4f}): the model did not learn.{hint}"
    ]


def _check_finite(history):
    """Raises when the loss became NaN or infinite (TerminateOnNaN stopped `fit`)."""
    import math

    for epoch, loss in enumerate(history.get("loss", [])):
        if not math.isfinite(loss):
            raise _Diverged(
                f"Training diverged: the loss became {loss} in epoch {epoch + 1} "
                "and training was stopped (TerminateOnNaN). Nothing was written to "
                "--out; check the data for NaN values, or lower the learning rate."
            )


@contextlib.contextmanager
def _naming_data_errors(args, *splits):
    """Turns tf.data failures into errors naming the file or label at fault."""
    import tensorflow as tf

    from keras_transfer import datasets

    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        message = error.message if hasattr(error, "message") else str(error)
        if "Labels must be class indices" in message:
            first = next(line for line in message.splitlines() if "Labels must" in line)
            raise ValueError(f"Dataset {args.data!r}: {first.strip()}") from error
        if args.data.startswith("folder:"):
            for split in splits:
                bad = datasets.find_unreadable_images(args.data, split)
                if bad:
                    raise ValueError(
                        f"Cannot decode image {bad[0]!r} ({len(bad)} unreadable "
                        f"file(s) in split {split!r}). Fix or remove them, or pass "
                        "`--skip-bad-images` to leave them out."
                    ) from error
        raise


def _evaluate(args):
    from keras_transfer import zoo
    from keras_transfer.cli import runs
    from keras_transfer.cli import scoring

    model, class_names = _load_model(args.model)
    split, indices, words = _evaluation_split(args)
    settings = runs.finished_settings(args.model) if os.path.isdir(args.model) else None
    if len(model.inputs[0].shape) != 4 and settings is not None:
        form = _data_form(zoo.get_task(settings["task"]), None)  # A text task.
    else:
        form = {"image_size": _model_image_size(model, args.image_size)}
    data, info = _load_data(
        args, split, indices=indices, augment=False, shuffle=False, **form
    )
    _check_model_classes(model, info.num_classes, f"dataset {info.name!r}")
    if class_names is not None:
        info.check(class_names=class_names)
    with _naming_data_errors(args, split):
        scores, _ = scoring.score_once(model, data, info.num_classes, samples=0)
    matrix = scores.pop("confusion_matrix")
    names = class_names or info.class_names or [f"class {i}" for i in range(len(matrix))]
    for index, (name, row) in enumerate(zip(names, matrix)):
        if sum(row):
            print(f"  {name}: {row[index]}/{sum(row)} right ({row[index] / sum(row):.3f})")
    print(f"{args.data} {words} ({info.num_examples} examples): {scores}")
    return 0


def _evaluation_split(args):
    """`(split, indices, words)` that `evaluate` scores.

    Without `--split`, a run folder trained on `--data` is scored on the
    test split it held out (recomputed from its recorded seed and
    fractions), else the dataset's `"test"` split, else -- other data
    without splits (a class-per-folder tree, a csv file) -- all of it.
    """
    from keras_transfer.cli import runs
    from keras_transfer.cli import splits

    if args.split is not None:
        splits.check_split(args.data, args.split, "--split")
        return args.split, None, f"split {args.split!r}"
    settings = runs.finished_settings(args.model) if os.path.isdir(args.model) else None
    if settings is not None and settings["data"] == args.data:
        plan = splits.plan_splits(
            args.data, settings["train_split"], settings["test_split"],
            settings["val_fraction"], settings["seed"], settings.get("test_fraction", 0.2),
        )
        return plan.test, plan.test_indices, f"test: {_split_words(plan)} by the run"
    if splits.is_unsplit(args.data):  # No split folders, so no test split either.
        return None, None, "all of it (no split folders)"
    if not splits.has_split(args.data, "test"):
        raise ValueError(
            f"Dataset {args.data!r} has no 'test' split. Pass --split NAME, or "
            "as MODEL the `fit` output folder of a run on the same --data (then "
            "the test images that run held out are scored)."
        )
    return "test", None, "split 'test'"


def _predict(args):
    import numpy as np
    from PIL import Image
    from PIL import UnidentifiedImageError

    model, class_names = _load_model(args.model)
    if class_names is not None:
        _check_model_classes(model, len(class_names), f"the run's {len(class_names)} class names")
    if len(model.inputs[0].shape) != 4:
        inputs, labels = _text_inputs(args)
        _print_top(args, labels, model.predict(inputs, verbose=0), class_names)
        return 0
    size = _model_image_size(model, None)
    images = []
    for path in args.inputs:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Input image {path!r} does not exist.")
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB").resize((size, size))))
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(
                f"Input {path!r} is not a readable image ({type(error).__name__}: {error})."
            ) from error
    logits = model.predict(np.stack(images).astype("uint8"), verbose=0)
    _print_top(args, args.inputs, logits, class_names)
    return 0


def _text_inputs(args):
    """`(model inputs, labels to print)` of `predict`'s texts for a text model.

    Each INPUT is a text, or the path of a file holding one. The texts are
    shaped as the run's task takes them (raw strings, or hashed word ids
    made by the same `datasets.load` code that fed training), so `MODEL`
    must be the `fit` output folder of a text task.
    """
    import csv
    import tempfile

    import numpy as np

    from keras_transfer import datasets
    from keras_transfer import zoo
    from keras_transfer.cli import runs

    settings = runs.finished_settings(args.model) if os.path.isdir(args.model) else None
    if settings is None:
        raise ValueError(
            f"{args.model!r} is a text model; pass its `keras-transfer fit` output "
            "folder as MODEL (the run's task says how texts become model inputs)."
        )
    texts = []
    for text in args.inputs:
        if os.path.isfile(text):
            with open(text, encoding="utf-8") as file:
                text = file.read()
        texts.append(text)
    form = _data_form(zoo.get_task(settings["task"]), None)
    if "token_ids" not in form:
        return np.array(texts), args.inputs
    with tempfile.TemporaryDirectory() as folder:
        table = os.path.join(folder, "texts.csv")
        with open(table, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["text", "label"])
            writer.writerows([text, 0] for text in texts)
        data = datasets.load(
            f"csv:{table}", None, batch_size=len(texts), shuffle=False, token_ids=form["token_ids"]
        )
        (ids, _), = list(data)
    return np.asarray(ids), args.inputs


def _print_top(args, names, logits, class_names):
    """One line per input: its top classes, by name where the model has them."""
    import numpy as np

    import keras

    if logits.shape[-1] == 1:  # Binary: one logit for class 1.
        positive = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))
        probabilities = np.concatenate([1 - positive, positive], axis=-1)
    else:
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    for name, row in zip(names, probabilities):
        top = np.argsort(row)[::-1][: args.top]
        ranked = ", ".join(
            f"{class_names[i] if class_names else f'class {i}'}: {row[i]:.3f}" for i in top
        )
        print(f"{name}: {ranked}")


def _export(args):
    if os.path.lexists(args.out) and not args.overwrite:
        raise ValueError(
            f"{args.out!r} already exists. Pass --overwrite to replace it (only "
            "once the new export passed its check), or choose another --out."
        )
    model, _ = _load_model(args.model)
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
    """`(model, class names or None)` of a `.keras` file or a `fit` run folder.

    The class names are those the model's `ClassificationHead` keeps.
    """
    import zipfile

    import keras

    from keras_transfer.heads import find_head

    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No saved model at {path!r}. Pass a `.keras` file or a `keras-transfer "
            "fit` output folder."
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a `.keras` file: not a zip archive (truncated, or "
            "another format)."
        )
    try:
        model = keras.saving.load_model(path)
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"Cannot read the saved model {path!r}: it is truncated or corrupt "
            f"({type(error).__name__}: {error})."
        ) from error
    head = find_head(model)
    return model, None if head is None else head.class_names


def _model_image_size(model, requested):
    """The image side a model takes: its own, or `--image-size` if it has none."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise ValueError(
            "This command needs an image model (inputs of rank 4), or the "
            "`fit` output folder of a text task. Received a model with input "
            f"shape {shape}."
        )
    if shape[1] is None:
        if requested is None:
            raise ValueError(
                f"The model takes images of any size {shape}: pass `--image-size`."
            )
        return requested
    if requested is not None and requested != shape[1]:
        raise ValueError(
            f"--image-size {requested} differs from the model's input size "
            f"{shape[1]} (input shape {shape})."
        )
    return shape[1]


def _check_model_classes(model, num_classes, what):
    """Raises unless the model's outputs fit `num_classes` (1 logit: 2 classes)."""
    outputs = model.output_shape[-1]
    predicts = 2 if outputs == 1 else outputs
    if predicts != num_classes:
        raise ValueError(
            f"The model predicts {predicts} classes ({outputs} output(s)) but "
            f"{what} has {num_classes}: its labels cannot be scored by this model."
        )


def _load_data(args, split, num_classes=None, **options):
    """`(tf.data.Dataset, DatasetInfo)` of `--data`, checked against a task.

    `options` go to `keras_transfer.datasets.load` (`indices`, `augment`,
    `channels`, `token_ids`, ...).
    """
    from keras_transfer import datasets

    return datasets.load(
        args.data,
        split=split,
        batch_size=args.batch_size,
        num_classes=num_classes,
        seed=getattr(args, "seed", 0),
        skip_bad_images=args.skip_bad_images,
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


def _data_form(spec, image_size):
    """The `datasets.load` arguments that shape data for task `spec`'s model.

    Images: `image_size` and the task's channels. Text: raw strings for
    KerasHub tasks (their preprocessor tokenizes), hashed word ids for the
    tasks that take ids (`test/tiny_text`).
    """
    if not _is_text(spec):
        return {"image_size": image_size, "channels": spec.input_shape[-1]}
    if spec.preset_fixes_inputs:
        return {"image_size": None}
    ids = (spec.task_kwargs["vocabulary_size"], spec.input_shape[0])
    return {"image_size": None, "token_ids": ids}


def _is_text(spec):
    """Whether a task takes text (token ids or strings), not images."""
    return len(spec.input_shape) == 1


def _check_task_input(spec, info):
    text_data = info.image_shape == ()
    if _is_text(spec) or text_data:
        kinds = {True: "text", False: "images"}
        if _is_text(spec) != text_data:
            raise ValueError(
                f"Task {spec.name!r} takes {kinds[_is_text(spec)]} but dataset "
                f"{info.name!r} holds {kinds[text_data]}."
            )
        return
    task_shape = tuple(spec.input_shape)
    if len(task_shape) != len(info.image_shape):
        raise ValueError(
            f"Dataset {info.name!r} yields images of shape {info.image_shape}, "
            f"but task {spec.name!r} takes inputs of shape {task_shape}."
        )
    info.check(input_shape=task_shape)


if __name__ == "__main__":
    sys.exit(main())
