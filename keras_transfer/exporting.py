"""Export a Keras model for serving, and prove the artifact computes the same.

`export` writes the artifact next to its destination, reloads it with the
runtime that will serve it (`tf.saved_model.load` or onnxruntime), compares
its outputs with the Keras model's on a probe batch, and only then moves it
into place. A failed check leaves nothing behind.
"""

import dataclasses
import os
import shutil
import tempfile

import keras
import numpy as np

_FORMATS = ("auto", "tf_saved_model", "onnx")
# Stand-in length for dimensions other than the batch that are unknown (None).
_UNKNOWN_DIM = 32
_PROBE_BATCH = 2


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What `keras_transfer.export` wrote.

    Args:
        path: String. The SavedModel folder or the `.onnx` file.
        format: String. `"tf_saved_model"` or `"onnx"`.
        max_abs_diff: Float. Largest absolute difference between the
            reloaded artifact's outputs and the Keras model's on the probe.
    """

    path: str
    format: str
    max_abs_diff: float


def export(model, path, *, overwrite=False, probe=None, atol=1e-4, format="auto"):
    """Export `model` and verify that the reloaded artifact matches it.

    A SavedModel gets a `"serving_default"` signature (and a `serve`
    function) whose inputs are named after the model's `keras.Input`s and
    whose outputs are named after its output layers, e.g.
    `signature(image=x)["logits"]`. Keep the preprocessing inside the model
    (zoo models do) so the artifact takes raw inputs.

    Backends: the TensorFlow and JAX backends write SavedModels (JAX through
    `jax2tf`). Keras' SavedModel export does not work on the torch backend,
    so there `format="auto"` writes ONNX, checked with onnxruntime (install
    `onnx` and `onnxruntime`). ONNX from TensorFlow or JAX needs `tf2onnx` or
    `jax2onnx`.

    Args:
        model: A built functional or `Sequential` Keras model.
        path: String or path. Folder of the SavedModel, or `.onnx` file.
        overwrite: Boolean. Replace an existing `path` (only once the new
            artifact passed its check). Defaults to `False`.
        probe: Array, list of arrays (one per input) or `None`. Inputs of the
            check. `None` draws a random batch: floats uniform in [0, 255)
            (raw pixels), uint8 in [0, 255], other integers in {0, 1}. Pass real inputs for a
            meaningful check of models that expect another range.
        atol: Float. Largest allowed absolute difference. Defaults to `1e-4`.
        format: String. `"auto"` (SavedModel on TensorFlow and JAX, ONNX on
            torch), `"tf_saved_model"` or `"onnx"`.

    Returns:
        An `ExportResult` with `path`, `format` and `max_abs_diff`.

    Example:

    >>> result = keras_transfer.export(model, "exported/flowers")
    >>> reloaded = tf.saved_model.load(result.path)
    >>> logits = reloaded.signatures["serving_default"](image=images)["logits"]
    """
    backend = keras.backend.backend()
    format = _resolve_format(format, backend)
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0:
        raise ValueError(
            "Invalid value received for argument `atol`. Expected a number >= 0. "
            f"Received: atol={atol!r}"
        )
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise ValueError(
            "Invalid value received for argument `model`: export needs a built "
            "functional or Sequential model with `model.inputs` (build it by "
            "calling it on a batch or constructing it from `keras.Input`). "
            f"Received: model of type {type(model).__name__}"
        )
    path = os.path.abspath(os.fspath(path))
    parent = _check_destination(path, overwrite)
    probe = _probe_inputs(model, probe)
    expected = {
        name: _to_float64(value)
        for name, value in _named_outputs(model, _call(model, probe)).items()
    }

    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        artifact = os.path.join(staging, os.path.basename(path))
        if format == "tf_saved_model":
            _write_saved_model(model, artifact)
            reloaded = _run_saved_model(model, artifact, probe)
        else:
            model.export(artifact, format="onnx", verbose=False)
            # ONNX output names are the exporter's; outputs come in model order.
            reloaded = dict(zip(expected, _run_onnx(artifact, probe)))
        max_abs_diff = max(
            float(np.max(np.abs(reloaded[name] - value), initial=0.0))
            for name, value in expected.items()
        )
        if reloaded.keys() != expected.keys() or not max_abs_diff <= atol:
            raise ValueError(
                f"The exported {format} artifact does not reproduce the Keras "
                f"model: max |difference| = {max_abs_diff:.3g} > atol={atol} "
                f"over {len(expected)} output(s). Nothing was written to {path!r}."
            )
        if os.path.lexists(path):
            _remove(path)
        os.replace(artifact, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(path, format, max_abs_diff)


def default_format(backend=None):
    """The format `export(format="auto")` writes on a backend.

    The one place that decides it: a SavedModel on TensorFlow and JAX, ONNX
    on torch (Keras cannot write a SavedModel there).

    Args:
        backend: `"tensorflow"`, `"jax"` or `"torch"`. Defaults to `None`:
            the current Keras backend.

    Returns:
        `"tf_saved_model"` or `"onnx"`.
    """
    backend = backend or keras.backend.backend()
    return "onnx" if backend == "torch" else "tf_saved_model"


def artifact_path(folder, format="auto"):
    """Where a run folder keeps its exported model for `format`.

    Args:
        folder: String or path. The run folder.
        format: `"auto"` (see `default_format`), `"tf_saved_model"` or
            `"onnx"`.

    Returns:
        `<folder>/saved_model` (a SavedModel folder) or `<folder>/model.onnx`.
    """
    if format == "auto":
        format = default_format()
    name = "model.onnx" if format == "onnx" else "saved_model"
    return os.path.join(os.fspath(folder), name)


def _resolve_format(format, backend):
    if format not in _FORMATS:
        raise ValueError(
            f"Invalid value received for argument `format`. Expected one of "
            f"{list(_FORMATS)}. Received: format={format!r}"
        )
    if format == "auto":
        return default_format(backend)
    if format == "tf_saved_model" and backend == "torch":
        raise ValueError(
            "Keras cannot export a SavedModel from the torch backend: its "
            "`ExportArchive` has no `track`/`add_endpoint` on torch and its "
            "`model.export` path needs torch_xla (and fails in Keras 3.15 even "
            "then). Use format='onnx' (or 'auto'), or save the model to a "
            "`.keras` file, load it in a process with KERAS_BACKEND=tensorflow "
            "or jax (weights are backend-agnostic) and export there. "
            f"Received: format={format!r} on backend={backend!r}"
        )
    return format


def _check_destination(path, overwrite):
    """Validate `path` and return its (existing, writable) parent folder."""
    if os.path.lexists(path) and not overwrite:
        is_empty_dir = os.path.isdir(path) and not os.listdir(path)
        if not is_empty_dir:
            raise ValueError(
                f"Invalid value received for argument `path`: {path!r} already "
                "exists. Pass overwrite=True to replace it (it is replaced only "
                "after the new export passed its check), or choose another path."
            )
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Invalid value received for argument `path`: cannot create its "
            f"parent folder {parent!r} ({error.strerror}). Received: path={path!r}"
        ) from error
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"Invalid value received for argument `path`: parent folder "
            f"{parent!r} is not writable. Received: path={path!r}"
        )
    return parent


def _probe_inputs(model, probe):
    """Return the probe as a list of numpy arrays, one per model input."""
    if probe is not None:
        arrays = [np.asarray(p) for p in (probe if isinstance(probe, (list, tuple)) else [probe])]
        if len(arrays) != len(model.inputs):
            raise ValueError(
                f"Invalid value received for argument `probe`: the model has "
                f"{len(model.inputs)} input(s) but {len(arrays)} array(s) were "
                "given. Received: probe shapes "
                f"{[a.shape for a in arrays]}"
            )
        return [a.astype(t.dtype) for a, t in zip(arrays, model.inputs)]
    rng = np.random.default_rng(0)
    arrays = []
    for tensor in model.inputs:
        shape = (_PROBE_BATCH,) + tuple(_UNKNOWN_DIM if d is None else d for d in tensor.shape[1:])
        if tensor.dtype == "uint8":
            arrays.append(rng.integers(0, 256, shape).astype("uint8"))
        elif np.issubdtype(np.dtype(tensor.dtype), np.integer):
            arrays.append(rng.integers(0, 2, shape).astype(tensor.dtype))
        else:
            arrays.append(rng.uniform(0, 255, shape).astype(tensor.dtype))
    return arrays


def _call(model, inputs):
    return model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)


def _named_outputs(model, outputs):
    """Map output names (the output layers' names) to output tensors."""
    if isinstance(outputs, dict):
        return dict(outputs)
    flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    # `Sequential` has one output and no `output_names`: name it by its last layer.
    names = getattr(model, "output_names", None) or [model.layers[-1].name]
    return dict(zip(names, flat))


def _to_float64(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype="float64")


def _write_saved_model(model, path):
    import tensorflow as tf

    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    def serve(*inputs):
        return _named_outputs(model, _call(model, inputs))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(path, verbose=False)


def _run_saved_model(model, path, probe):
    import tensorflow as tf

    signature = tf.saved_model.load(path).signatures["serving_default"]
    names = [t.name for t in model.inputs]
    outputs = signature(**{name: tf.constant(array) for name, array in zip(names, probe)})
    return {name: _to_float64(value) for name, value in outputs.items()}


def _run_onnx(path, probe):
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "Checking an ONNX export needs onnxruntime: pip install onnx onnxruntime"
        ) from error
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {spec.name: array for spec, array in zip(session.get_inputs(), probe)}
    return [np.asarray(o, dtype="float64") for o in session.run(None, feeds)]


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
