"""Load saved `.keras` files in a fresh process after only `import keras_transfer`.

Run by tests/test_registration.py:

    KERAS_BACKEND=jax python tests/load_saved_worker.py MANIFEST.json

The manifest lists `{"family", "path", "inputs", "expected"}` entries
(`inputs`/`expected` are `.npy` files, or `inputs` a list of strings). Each
file is loaded with `keras.saving.load_model(path)` (safe_mode on), run on
its inputs and compared with what the saving process computed. Prints one
JSON object: per family the max |difference|, or the error; and which heavy
modules were imported before the first text model was loaded.
"""

import json
import sys

import keras_transfer  # noqa: F401  (the one import a user makes)

import keras  # noqa: E402
import numpy as np  # noqa: E402


def _outputs(model, inputs):
    outputs = model.predict(inputs, verbose=0)
    if isinstance(outputs, dict):
        return {k: np.asarray(v, "float64") for k, v in outputs.items()}
    return {"output": np.asarray(outputs, "float64")}


def main(manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    report = {"backend": keras.backend.backend(), "families": {}}
    for entry in manifest:
        if entry["family"].startswith("text") and "imported_before_text" not in report:
            report["imported_before_text"] = sorted(
                m for m in ("tensorflow", "keras_hub") if m in sys.modules
            )
        try:
            model = keras.saving.load_model(entry["path"])
            inputs = entry["inputs"]
            if isinstance(inputs, str):
                inputs = np.load(inputs)
            expected = np.load(entry["expected"], allow_pickle=False)
            got = _outputs(model, inputs)
            difference = max(
                float(np.max(np.abs(got[name] - expected[name])))
                for name in expected.files
            )
            report["families"][entry["family"]] = {
                "class": type(model).__name__,
                "max_abs_diff": difference,
            }
        except Exception as error:  # Reported to the test, which fails on it.
            report["families"][entry["family"]] = {
                "error": f"{type(error).__name__}: {error}"[:2000]
            }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
