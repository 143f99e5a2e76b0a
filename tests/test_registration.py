"""`import keras_transfer` makes saved models load with plain `keras.saving.load_model`.

Models of every builder family are saved here and loaded in fresh processes
(tests/load_saved_worker.py) that import nothing but `keras_transfer` and
Keras, with safe_mode on: once on this backend, once on another backend.
"""

import importlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_transfer
from keras_transfer import _registration
from keras_transfer import zoo
from keras_transfer.zoo.text_classification import minilm_preset_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "load_saved_worker.py")
BACKENDS = ("tensorflow", "jax", "torch")
NEXT_BACKEND = dict(zip(BACKENDS, BACKENDS[1:] + BACKENDS[:1]))
once = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; checked on the tensorflow run",
)


def _outputs(model, inputs):
    outputs = model.predict(inputs, verbose=0)
    if isinstance(outputs, dict):
        return {k: np.asarray(v) for k, v in outputs.items()}
    return {"output": np.asarray(outputs)}


def _save(folder, family, model, inputs):
    path = os.path.join(folder, f"{family}.keras")
    model.save(path)
    expected = os.path.join(folder, f"{family}.expected.npz")
    np.savez(expected, **_outputs(model, inputs))
    if not isinstance(inputs, list):
        np.save(os.path.join(folder, f"{family}.inputs.npy"), inputs)
        inputs = os.path.join(folder, f"{family}.inputs.npy")
    return {"family": family, "path": path, "inputs": inputs, "expected": expected}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """One saved model per builder family (and the DA model's classifier)."""
    folder = str(tmp_path_factory.mktemp("saved"))
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    manifest = []
    for family, task in (
        ("image_classification", "image_classification/mobilenetv3small"),
        ("feature_extraction", "feature_extraction/mobilenetv3small"),
        ("domain_adaptation", "domain_adaptation/dann_mobilenetv3small"),
    ):
        model = zoo.build(task, 3, weights=None, input_shape=(32, 32, 3))
        manifest.append(_save(folder, family, model, images))
        if family == "domain_adaptation":
            manifest.append(_save(folder, "domain_adaptation_classifier", model.classifier, images))
    if minilm_preset_dir() is not None and importlib.util.find_spec("keras_hub"):
        model = zoo.build("text_classification/minilm_l6", 2, weights=None)
        manifest.append(_save(folder, "text_classification", model, ["a fine film", "dull"]))
    manifest_path = os.path.join(folder, "manifest.json")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return manifest_path, [entry["family"] for entry in manifest]


def _load_in_fresh_process(manifest_path, backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, WORKER, manifest_path],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check(report, families):
    assert set(report["families"]) == set(families)
    for family, outcome in report["families"].items():
        assert "error" not in outcome, f"{family} on {report['backend']}: {outcome['error']}"
        assert outcome["max_abs_diff"] <= 1e-4, (family, outcome)


def test_saved_models_load_after_only_import_keras_transfer(saved_models, backend):
    manifest_path, families = saved_models
    assert "text_classification" in families, "the MiniLM preset is part of the test extra"
    report = _load_in_fresh_process(manifest_path, backend)
    _check(report, families)
    assert report["families"]["text_classification"]["class"] == "TextClassifier"
    assert report["families"]["domain_adaptation"]["class"] == "AdaptationModel"
    if backend != "tensorflow":
        # Registering is cheap: image and DA models load without TensorFlow.
        assert report["imported_before_text"] == []


@pytest.mark.slow
def test_saved_models_load_under_another_backend(saved_models, backend):
    manifest_path, families = saved_models
    report = _load_in_fresh_process(manifest_path, NEXT_BACKEND[backend])
    assert report["backend"] == NEXT_BACKEND[backend]
    _check(report, families)


@once
def test_the_table_lists_every_registered_class():
    # Every module of the package, not only those the table lists: a class
    # registered in a module missing from the table is what this must catch.
    import pkgutil

    import keras_transfer

    for module in pkgutil.walk_packages(keras_transfer.__path__, "keras_transfer."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    registered = {
        name: value
        for name, value in keras.saving.get_custom_objects().items()
        if name.startswith("keras_transfer>")
    }
    assert set(registered) == set(_registration.SERIALIZABLE)
    for name, value in registered.items():
        assert value.__module__ == _registration.SERIALIZABLE[name], name


@once
def test_importing_keras_after_the_package_registers_every_name():
    code = (
        "import sys, keras_transfer\n"
        "assert 'keras' not in sys.modules\n"
        "import keras\n"
        "names = {n for n in keras.saving.get_custom_objects() if n.startswith('keras_transfer>')}\n"
        "from keras_transfer import _registration\n"
        "assert names == set(_registration.SERIALIZABLE), names\n"
        "heavy = [m for m in ('keras_hub', 'keras_transfer.heads') if m in sys.modules]\n"
        "assert heavy == [], heavy\n"
        "import keras_transfer.heads\n"
        "assert keras.saving.get_custom_objects()['keras_transfer>ClassificationHead'] "
        "is keras_transfer.heads.ClassificationHead\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_a_registered_function_loads_through_its_loader():
    loader = _registration._Loader("keras_transfer>coral_loss", "keras_transfer.losses.coral")
    source = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    from keras_transfer.losses import coral_loss

    assert np.allclose(
        keras.ops.convert_to_numpy(loader(source, source + 1.0)),
        keras.ops.convert_to_numpy(coral_loss(source, source + 1.0)),
    )
    assert keras_transfer.losses.coral_loss is loader.load()


@once
def test_registered_when_tensorflow_is_imported_before_keras():
    # TensorFlow's import probes `find_spec("keras")` before Keras is imported
    # (the CLI's quiet mode imports TensorFlow first).
    code = (
        "import keras_transfer, tensorflow, keras\n"
        "print(keras.saving.get_custom_objects().get('keras_transfer>ClassificationHead'))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "keras_transfer.heads" in result.stdout, result.stdout
