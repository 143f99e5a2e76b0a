"""Fine-tuning throughput and memory of zoo models, per backend and device.

For each zoo task, mode and dtype policy, in a fresh process (so peak memory
is that run's alone):

- builds the task with `weights=None` (only the speed matters here) at
  224x224, compiled with its recipe optimizer;
- mode `frozen`: the zoo default (backbone frozen, head trained);
  mode `full`: `keras_transfer.unfreeze(model)` (every layer but
  BatchNormalization) and the model recompiled;
- fits on random uint8 images for 1 warm-up epoch (compilation included)
  and 1 timed epoch, and records images/s of the timed epoch, the seconds
  of the warm-up epoch, the trainable parameter count, the optimizer's
  variable bytes (frozen parts get no optimizer slots) and the device's
  peak memory (JAX `memory_stats`, torch `max_memory_allocated`; TF's
  `get_memory_info` on GPU).

    python bench/throughput/run.py --backend jax
    python bench/throughput/run.py --backend torch --tasks image_classification/resnet50

Writes `bench/throughput/results/finetune_throughput_<backend>_<device>.json` and
regenerates `bench/throughput/results/finetune_throughput.md` from every JSON there.
No TensorFlow is needed on the JAX and torch backends.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
DEFAULT_TASKS = ("image_classification/mobilenetv2", "image_classification/resnet50")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--modes", nargs="+", default=["frozen", "full"], choices=("frozen", "full"))
    parser.add_argument(
        "--policies", nargs="+", default=["float32", "mixed_bfloat16"],
        help="Keras dtype policies to run",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="batches per epoch")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # task|mode|policy
    return parser.parse_args()


def device_name():
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return device.platform, getattr(device, "device_kind", device.platform)
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "gpu", torch.cuda.get_device_name(0)
        return "cpu", "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return ("gpu", gpus[0].name) if gpus else ("cpu", "cpu")


def peak_memory_bytes():
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use")
        if backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    except Exception:  # noqa: BLE001 - a missing statistic is recorded as None
        return None
    return None


def run_one(task, mode, policy, args):
    import keras
    import numpy as np

    import keras_transfer
    from keras_transfer import zoo

    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    size = args.image_size
    model = zoo.build(task, num_classes=10, weights=None, input_shape=(size, size, 3))
    if mode == "full":
        keras_transfer.unfreeze(model)
        optimizer = model.optimizer.__class__.from_config(model.optimizer.get_config())
        model.compile(optimizer=optimizer, loss=model.loss, metrics=["accuracy"])
    count = args.batch_size * args.steps
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (count, size, size, 3), dtype="uint8")
    y = rng.integers(0, 10, (count,))

    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=args.batch_size, epochs=2, verbose=0, callbacks=[Timer()])
    optimizer_bytes = sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.optimizer.variables
    )
    return {
        "task": task,
        "mode": mode,
        "policy": policy,
        "images_per_s": count / times[1],
        "warmup_epoch_s": times[0],
        "trainable_params": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
        "optimizer_bytes": optimizer_bytes,
        "peak_memory_bytes": peak_memory_bytes(),
    }


def write_table():
    rows = []
    for path in sorted(RESULTS.glob("finetune_throughput_*.json")):
        result = json.loads(path.read_text())
        shape = f"{result['image_size']} px, batch {result['batch_size']}"
        for run in result["runs"]:
            if "error" in run:
                rows.append(
                    f"| {result['backend']} | {result['device']} | {shape} | {run['task'].split('/')[-1]} "
                    f"| {run['mode']} | {run['policy']} | failed: {run['error'][:60]} | | | | |"
                )
                continue
            peak = run["peak_memory_bytes"]
            rows.append(
                f"| {result['backend']} | {result['device']} | {shape} | {run['task'].split('/')[-1]} "
                f"| {run['mode']} | {run['policy']} | {run['images_per_s']:.0f} "
                f"| {run['warmup_epoch_s']:.1f} | {run['trainable_params'] / 1e6:.2f} "
                f"| {run['optimizer_bytes'] / 2**20:.1f} "
                f"| {'-' if peak is None else f'{peak / 2**30:.2f}'} |"
            )
    header = (
        "Fine-tuning throughput (`python bench/throughput/run.py --backend <name>`): "
        "random uint8 images, images/s of the second epoch; warm-up = "
        "first epoch incl. compilation; optimizer MiB = optimizer variables (frozen "
        "weights get none); peak GiB = device peak memory of the run.\n\n"
        "| backend | device | input | task | mode | policy | images/s | warm-up s | trainable M "
        "| optimizer MiB | peak GiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    (RESULTS / "finetune_throughput.md").write_text(header + "\n".join(rows) + "\n")


def main():
    args = parse_args()
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND"):
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))
    if args.results_dir:
        global RESULTS
        RESULTS = pathlib.Path(args.results_dir)
    if args.one:
        task, mode, policy = args.one.split("|")
        print("RESULT " + json.dumps(run_one(task, mode, policy, args)), flush=True)
        return

    import keras

    backend = keras.backend.backend()
    platform, device = device_name()
    runs = []
    for task in args.tasks:
        for mode in args.modes:
            for policy in args.policies:
                command = [sys.executable, *sys.argv, "--one", f"{task}|{mode}|{policy}"]
                done = subprocess.run(command, capture_output=True, text=True)
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode or not lines:
                    run = {"task": task, "mode": mode, "policy": policy,
                           "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
                else:
                    run = json.loads(lines[-1][len("RESULT "):])
                runs.append(run)
                print(json.dumps(run), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "backend": backend,
        "keras": keras.__version__,
        "platform": platform,
        "device": device,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "image_size": args.image_size,
        "runs": runs,
    }
    name = f"finetune_throughput_{backend}_{platform}.json"
    (RESULTS / name).write_text(json.dumps(summary, indent=2))
    write_table()


if __name__ == "__main__":
    main()
