"""Export a Keras model for serving, and prove the artifact computes the same.

`export` writes the artifact next to its destination, reloads it with the
runtime that will serve it (`tf.saved_model.load` or onnxruntime), compares
its outputs with the Keras model's on a probe batch, and only then moves it
into place. A failed check leaves nothing behind.
"""

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile

import keras
import ml_dtypes
import numpy as np

from keras_transfer import _keras_compat
from keras_transfer._atomic import crash_point
from keras_transfer._atomic import replace
from keras_transfer._validation import check_number

_FORMATS = ("auto", "tf_saved_model", "onnx")
_BACKENDS = ("tensorflow", "jax", "torch")
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


DEFAULT_ATOL = 1e-4


def export(model, path, *, overwrite=False, probe=None, atol=None, format="auto"):
    """Export `model` and verify that the reloaded artifact matches it.

    A SavedModel gets a `"serving_default"` signature whose inputs are named
    after the model's `keras.Input`s, keep their dtype and shape, and whose
    outputs are named after its output layers, e.g.
    `signature(image=x)["logits"]`. An image model (every input a float
    tensor of rank 4) also gets a `"serve_uint8"` signature that takes uint8
    pixels; the restored `serve` function takes either. Inputs whose height,
    width or channels differ from the model's raise an
    `InvalidArgumentError` stating the expected shape. Keep the
    preprocessing inside the model (zoo models do) so the artifact takes raw
    inputs.

    Backends: every backend writes SavedModels. TensorFlow and JAX (through
    `jax2tf`) write them in this process; on torch, where Keras cannot write
    a SavedModel, the model is saved to a `.keras` file and exported by a
    TensorFlow-backend subprocess, and the artifact is then checked against
    the torch model's own outputs. `format="onnx"` writes ONNX (checked with
    onnxruntime); from TensorFlow it needs `tf2onnx`, from JAX `jax2onnx`
    (`pip install 'keras-transfer[onnx]'`).

    Args:
        model: A built functional or `Sequential` Keras model.
        path: String or path. Folder of the SavedModel, or `.onnx` file.
        overwrite: Boolean. Replace an existing `path` (only once the new
            artifact passed its check). Defaults to `False`.
        probe: Array, list of arrays (one per input) or `None`. Inputs of the
            check; they must be finite. `None` draws a random batch: floats
            uniform in [0, 255) (raw pixels), uint8 in [0, 255], other
            integers in {0, 1}. Pass real inputs for a meaningful check of
            models that expect another range.
        atol: Float or `None`. Largest allowed absolute difference. `None`
            (the default): `1e-4` for a float32 model; for a model with
            layers computing in bfloat16 or float16 (a `mixed_bfloat16` /
            `mixed_float16` policy), `1e-4 + 8 * u * max|output|`, `u` the
            unit roundoff of that dtype (`2**-8`, `2**-11`): the exported
            graph may fuse and order the reduced-precision arithmetic
            differently (measured on ResNet50, JAX: 0.073 on logits up to 11
            in bfloat16, under a quarter of this bound).
        format: String. `"auto"` (see `default_format`: a SavedModel),
            `"tf_saved_model"` or `"onnx"`.

    Returns:
        An `ExportResult` with `path`, `format` and `max_abs_diff`.

    Example:

    ```python
    import tensorflow as tf

    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))

    result = keras_transfer.export(model, "exported/flowers")
    reloaded = tf.saved_model.load(result.path)
    images = tf.random.uniform((2, 16, 16, 3), maxval=255)
    logits = reloaded.signatures["serving_default"](image=images)["logits"]
    logits.shape  # TensorShape([2, 3])
    ```
    """
    backend = keras.backend.backend()
    format = _resolve_format(format)
    if atol is not None:
        check_number("atol", atol, minimum=0)
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
    expected = _expected_outputs(model, probe)
    if atol is None:
        atol = default_atol(model, expected)

    try:
        staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    except OSError as error:
        raise ValueError(
            f"Invalid value received for argument `path`: cannot write in its "
            f"folder {parent!r} ({error.strerror or error}). Received: path={path!r}"
        ) from error
    try:
        artifact = os.path.join(staging, os.path.basename(path))
        if format == "tf_saved_model":
            raw = os.path.join(staging, "raw_saved_model")
            if backend == "torch":
                _write_raw_saved_model_in_tensorflow(model, raw, staging)
            else:
                _write_raw_saved_model(model, raw)
            _write_serving_saved_model(model, raw, artifact)
            reloaded = _run_saved_model(model, artifact, probe)
            uint8_probe = _uint8_probe(model, probe)
            if uint8_probe is not None:
                expected.update(
                    {
                        f"{name} (uint8)": value
                        for name, value in _expected_outputs(model, uint8_probe).items()
                    }
                )
                reloaded.update(
                    {
                        f"{name} (uint8)": value
                        for name, value in _run_saved_model(
                            model, artifact, uint8_probe, "serve_uint8"
                        ).items()
                    }
                )
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
                f"model: max |difference| = {max_abs_diff:.3g} > atol={atol:.3g} "
                f"over {len(expected)} output(s). Nothing was written to {path!r}."
            )
        crash_point("export:replace")
        replace(artifact, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(path, format, max_abs_diff)


def default_atol(model, expected):
    """`export`'s tolerance for `model` whose outputs on the probe are `expected`.

    `1e-4`, plus `8 * u * max|expected|` when a layer computes in a reduced
    precision dtype with unit roundoff `u` (the lowest precision among them).
    """
    dtypes = {layer.compute_dtype for layer in _keras_compat.all_sublayers(model)}
    reduced = [
        ml_dtypes.finfo(dtype)
        for dtype in dtypes
        if keras.backend.is_float_dtype(dtype) and ml_dtypes.finfo(dtype).bits < 32
    ]
    if not reduced:
        return DEFAULT_ATOL
    roundoff = max(info.eps for info in reduced) / 2
    largest = max(float(np.max(np.abs(v), initial=0.0)) for v in expected.values())
    return DEFAULT_ATOL + 8 * roundoff * largest


def default_format(backend=None):
    """The format `export(format="auto")` writes on a backend.

    The one place that decides it: a SavedModel, on every backend (on torch
    it is written by a TensorFlow-backend subprocess, see `export`).

    Args:
        backend: `"tensorflow"`, `"jax"` or `"torch"`. Defaults to `None`:
            the current Keras backend.

    Returns:
        `"tf_saved_model"`.
    """
    backend = backend or keras.backend.backend()
    if backend not in _BACKENDS:
        raise ValueError(
            f"Invalid value received for argument `backend`. Expected one of "
            f"{list(_BACKENDS)}. Received: backend={backend!r}"
        )
    return "tf_saved_model"


def artifact_path(folder, format="auto"):
    """Where a run folder keeps its exported model for `format`.

    Args:
        folder: String or path. The run folder.
        format: `"auto"` (see `default_format`), `"tf_saved_model"` or
            `"onnx"`.

    Returns:
        `<folder>/saved_model` (a SavedModel folder) or `<folder>/model.onnx`.
    """
    format = _resolve_format(format)
    name = "model.onnx" if format == "onnx" else "saved_model"
    return os.path.join(os.fspath(folder), name)


def _resolve_format(format):
    if format not in _FORMATS:
        raise ValueError(
            f"Invalid value received for argument `format`. Expected one of "
            f"{list(_FORMATS)}. Received: format={format!r}"
        )
    return default_format() if format == "auto" else format


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
    """Return the probe as a list of finite numpy arrays, one per model input."""
    if probe is None:
        return _random_probe(model)
    arrays = [np.asarray(p) for p in (probe if isinstance(probe, (list, tuple)) else [probe])]
    if len(arrays) != len(model.inputs):
        raise ValueError(
            f"Invalid value received for argument `probe`: the model has "
            f"{len(model.inputs)} input(s) but {len(arrays)} array(s) were "
            "given. Received: probe shapes "
            f"{[a.shape for a in arrays]}"
        )
    for array, tensor in zip(arrays, model.inputs):
        if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            raise ValueError(
                "Invalid value received for argument `probe`: a NaN or "
                f"infinite value in input `{tensor.name}` at index {where}. "
                "The check compares outputs on finite inputs. Received: "
                f"probe value {array[where]}"
            )
    return [a.astype(t.dtype) for a, t in zip(arrays, model.inputs)]


def _random_probe(model):
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


def _takes_float_images(model):
    """Whether every input is a float tensor of rank 4 (an image batch)."""
    return all(
        len(t.shape) == 4 and np.issubdtype(np.dtype(t.dtype), np.floating)
        for t in model.inputs
    )


def _uint8_probe(model, probe):
    """The probe as uint8 pixels, for models with a `serve_uint8` signature."""
    if not _takes_float_images(model):
        return None
    return [np.clip(np.round(p), 0, 255).astype("uint8") for p in probe]


def _expected_outputs(model, probe):
    """The Keras model's outputs on `probe` (cast to its input dtypes), finite."""
    inputs = [p.astype(t.dtype) for p, t in zip(probe, model.inputs)]
    outputs = {
        name: _to_float64(value)
        for name, value in _named_outputs(model, _call(model, inputs)).items()
    }
    for name, value in outputs.items():
        if not np.isfinite(value).all():
            raise ValueError(
                f"The Keras model's output `{name}` holds NaN or infinite "
                "values on the probe, so there is nothing to check an export "
                "against: its weights are probably not finite (did training "
                "diverge?). Nothing was written."
            )
    return outputs


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


def _save_options():
    import tensorflow as tf

    # A serving artifact is never differentiated, and JAX models with
    # unknown image sizes cannot save their jax2tf custom gradients.
    return tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def _write_raw_saved_model(model, path):
    """Keras' own SavedModel of `model`: one `serve` endpoint, model dtypes."""
    import tensorflow as tf

    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    def serve(*inputs):
        return _named_outputs(model, _call(model, inputs))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(path, verbose=False, options=_save_options())


def _write_raw_saved_model_in_tensorflow(model, path, staging):
    """`_write_raw_saved_model` in a TensorFlow-backend process, for torch."""
    saved = os.path.join(staging, "model.keras")
    model.save(saved)
    code = (
        "import sys\n"
        "import keras\n"
        "from keras_transfer import exporting\n"
        "exporting._write_raw_saved_model(keras.saving.load_model(sys.argv[1]), sys.argv[2])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, saved, path],
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "Exporting a SavedModel from the torch backend runs Keras' "
            "exporter in a TensorFlow-backend subprocess, which failed "
            f"(exit {result.returncode}):\n{result.stderr[-3000:]}"
        )


def _write_serving_saved_model(model, raw_path, path):
    """Wraps Keras' SavedModel at `raw_path` into the served one at `path`.

    Adds what Keras' signatures lack: a clear error when an input's shape
    differs from the model's (instead of a reshape or XLA refinement error
    deep inside), and, for image models, a uint8 signature.
    """
    import tensorflow as tf

    raw = tf.saved_model.load(raw_path)
    inputs = [(t.name, tuple(t.shape), t.dtype) for t in model.inputs]

    def serve(*tensors):
        checked = []
        for tensor, (name, shape, dtype) in zip(tensors, inputs):
            actual = tf.shape(tensor)
            same = [tf.equal(actual[i], d) for i, d in enumerate(shape) if d is not None]
            check = tf.debugging.Assert(
                tf.reduce_all(same) if same else True,
                [
                    f"Input `{name}` must have shape {shape} (None: any "
                    "size). Received: shape",
                    actual,
                ],
                summarize=len(shape),
            )
            with tf.control_dependencies([check]):
                checked.append(tf.cast(tensor, dtype))
        return raw.serve(*checked)

    module = tf.Module()
    module.raw = raw
    module.serve = tf.function(serve)
    signatures = {
        "serving_default": module.serve.get_concrete_function(
            *[tf.TensorSpec(shape, dtype, name=name) for name, shape, dtype in inputs]
        )
    }
    if _takes_float_images(model):
        signatures["serve_uint8"] = module.serve.get_concrete_function(
            *[tf.TensorSpec(shape, "uint8", name=name) for name, shape, _ in inputs]
        )
    tf.saved_model.save(module, path, signatures=signatures, options=_save_options())


def _run_saved_model(model, path, probe, signature="serving_default"):
    import tensorflow as tf

    function = tf.saved_model.load(path).signatures[signature]
    names = [t.name for t in model.inputs]
    outputs = function(**{name: tf.constant(array) for name, array in zip(names, probe)})
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
