"""Training throughput of zoo models beside native PyTorch, same machine, same run.

For each model (`resnet50`, `mobilenetv2`) and mode, one process holds the
contenders, warms each up (compilation included), then alternates their timed
passes (`--repeats` rounds of `--steps` batches each), so all see the same
machine load; images/s is the median pass. The contenders:

- `zoo`: `keras_transfer.zoo.build("image_classification/<model>",
  weights=None)` as the zoo compiles it (its `jit_compile` and
  `steps_per_execution` defaults), with the recipe's optimizer swapped for the
  peer's: SGD, learning rate 0.01, momentum 0.9. Mode `full`:
  `keras_transfer.unfreeze(model)` (every layer but BatchNormalization, which
  stays in inference mode); mode `frozen`: the zoo's frozen backbone, head
  trained.
- variants of the zoo model that try a setting against its default
  (`--variants`): `xla` (jit_compile=True), `no-xla`, `spe<N>`
  (steps_per_execution=N), `channels-first` (image data format), `bf16`
  (mixed_bfloat16 policy), `keras` (plain `keras.applications` + the same
  head, Keras' own defaults);
- the native PyTorch peer (`peer.py`: the same architecture written in plain
  torch, parameter count checked equal, channels_last, BatchNorm in eval mode
  in both modes as in the zoo), `eager` and `torch.compile`.

Both sides train on the same random 0..255 images held in host memory
(float32, or uint8 with `--input-dtype uint8`; Keras: `fit` on numpy arrays,
one epoch per pass; the peer copies each batch from pinned memory to its
device). `--precision bfloat16` runs every contender in mixed bfloat16
(Keras' `mixed_bfloat16` policy, `torch.autocast` for the peer). On a GPU,
`--peak-tflops` and `--gflops-per-image` add each row's model FLOP
utilisation (MFU: images/s x FLOP per training image / peak FLOP/s).

    python bench/throughput/run.py --backend jax
    python bench/throughput/run.py --backend torch --variants xla channels-first
    # one H100/H200, as the GPU results were taken (ResNet50 ~24.7 GFLOP per
    # training image at 224 px; ~989 dense bf16 TFLOP/s):
    python bench/throughput/run.py --backend jax --device h200 --models resnet50 \
        --modes full --batch-size 128 256 --image-size 224 --precision bfloat16 \
        --input-dtype uint8 --steps 20 --repeats 5 --peak-tflops 989 --gflops-per-image 24.7

Writes `bench/throughput/results/<device>-<backend>.json` with `"rows"`: one
per (model, mode, peer) with the zoo's images/s, the peer's and their ratio;
`"measurements"`: every process' numbers (each variant beside the eager peer);
and regenerates `bench/throughput/README.md` from every JSON there
(`--readme-only` does only that). The
machine is shared and not quiet: compare ratios, not absolute numbers (the
load average before and after each process is recorded).
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import common  # noqa: E402

RESULTS = HERE / "results"
MODELS = ("resnet50", "mobilenetv2")
PEERS = ("eager", "compile")
NUM_CLASSES = 10
LEARNING_RATE = 0.01
MOMENTUM = 0.9


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"))
    parser.add_argument("--readme-only", action="store_true", help="only regenerate README.md")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--modes", nargs="+", default=["full", "frozen"], choices=("full", "frozen"))
    parser.add_argument("--variants", nargs="*", default=[], help="zoo variants, e.g. xla spe4 bf16 keras")
    parser.add_argument("--variant-modes", nargs="+", default=["full", "frozen"], choices=("full", "frozen"))
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16], help="one or more")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--input-dtype", choices=("float32", "uint8"), default="float32")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak, for MFU")
    parser.add_argument("--gflops-per-image", type=float, default=None, help="training GFLOP per image, for MFU")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=6, help="batches per warm-up / timed pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes")
    parser.add_argument("--device", default="cpu", help="name in the results file")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="CPU threads of every framework (default: each framework's own choice)",
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.backend and not args.readme_only:
        parser.error("the following arguments are required: --backend")
    return args


def _images(args, batch_size):
    import numpy as np

    rng = np.random.default_rng(0)
    count = batch_size * args.steps
    side = args.image_size
    x = rng.uniform(0, 255, (count, side, side, 3)).astype(args.input_dtype)
    y = rng.integers(0, NUM_CLASSES, (count,)).astype("int64")
    return x, y


def _keras_model(model_name, mode, variant, args):
    import keras

    import keras_transfer
    from keras_transfer import zoo

    if variant == "bf16" or args.precision == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    if variant == "channels-first":
        keras.config.set_image_data_format("channels_first")
    side = args.image_size
    shape = (3, side, side) if variant == "channels-first" else (side, side, 3)
    keras.utils.set_random_seed(0)
    if variant == "keras":
        constructor = {"resnet50": keras.applications.ResNet50, "mobilenetv2": keras.applications.MobileNetV2}
        base = constructor[model_name](include_top=False, weights=None, input_shape=shape, pooling="avg")
        base.trainable = mode == "full"
        inputs = keras.Input(shape)
        x = base(inputs, training=False)
        outputs = keras.layers.Dense(NUM_CLASSES)(keras.layers.Dropout(0.2)(x))
        model = keras.Model(inputs, outputs)
        options = {}
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    else:
        model = zoo.build(f"image_classification/{model_name}", NUM_CLASSES, weights=None, input_shape=shape)
        if mode == "full":
            keras_transfer.unfreeze(model)
        options = {"jit_compile": model.jit_compile, "steps_per_execution": model.steps_per_execution}
        loss, metrics = model.loss, ["accuracy"]
    if variant == "xla":
        options["jit_compile"] = True
    elif variant == "no-xla":
        options["jit_compile"] = False
    elif variant.startswith("spe"):
        options["steps_per_execution"] = int(variant[3:])
    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM),
        loss=loss,
        metrics=metrics,
        **options,
    )
    return model


class KerasRunner:
    """Fits a Keras model for `steps` batches per call (its first call warms up)."""

    def __init__(self, model_name, mode, variant, args, batch_size):
        import numpy as np

        self.model = _keras_model(model_name, mode, variant, args)
        self.x, self.y = _images(args, batch_size)
        if variant == "channels-first":
            self.x = np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        self.batch_size = batch_size

    def __call__(self):
        self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, shuffle=False, verbose=0)

    def describe(self):
        import keras
        import numpy as np

        return {
            "parameters": int(self.model.count_params()),
            "trainable_parameters": int(sum(np.prod(v.shape) for v in self.model.trainable_weights)),
            "jit_compile": bool(self.model.jit_compile),
            "steps_per_execution": int(self.model.steps_per_execution),
            "dtype_policy": keras.config.dtype_policy().name,
            "image_data_format": keras.config.image_data_format(),
            "device": _keras_device(),
        }


def _keras_device():
    """The accelerator Keras computes on, in words (e.g. "cuda:0", "cpu")."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    if backend == "torch":
        import torch  # Keras' torch backend trains on CUDA whenever torch has it.

        return "cuda" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


class PeerRunner:
    """One pass of `steps` native PyTorch training steps per call."""

    def __init__(self, model_name, mode, peer, args, batch_size):
        import torch

        import peer as torch_peer

        torch.manual_seed(0)
        self.model, self.step = torch_peer.make_step(
            model_name, NUM_CLASSES, mode, compiled=peer == "compile",
            learning_rate=LEARNING_RATE, momentum=MOMENTUM, precision=args.precision,
        )
        self.device = torch_peer.device()
        x, y = _images(args, batch_size)
        images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        labels = torch.from_numpy(y)
        if self.device.type == "cuda":
            images, labels = images.pin_memory(), labels.pin_memory()
        self.batches = [
            (images[i : i + batch_size], labels[i : i + batch_size])
            for i in range(0, len(labels), batch_size)
        ]

    def __call__(self):
        # Synchronised once per pass, as Keras' fit is (at the epoch's end).
        losses = [self.step(images, labels) for images, labels in self.batches]
        losses[-1].item()

    def describe(self):
        import torch

        import peer as torch_peer

        return {
            "parameters": torch_peer.parameter_count(self.model),
            "trainable_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "torch_threads": torch.get_num_threads(),
            "device": str(self.device),
        }


def measure(model_name, mode, variant, peers, batch_size, args):
    """Warm every runner up, then alternate their timed passes (same load for all)."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runners = {variant: KerasRunner(model_name, mode, variant, args, batch_size)}
    runners.update(
        {f"pytorch-{peer}": PeerRunner(model_name, mode, peer, args, batch_size) for peer in peers}
    )
    count = batch_size * args.steps
    results = {}
    for name, runner in runners.items():
        start = time.perf_counter()
        runner()
        results[name] = {**runner.describe(), "warmup_s": time.perf_counter() - start, "images_per_s_each": []}
    for _ in range(args.repeats):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner()
            results[name]["images_per_s_each"].append(count / (time.perf_counter() - start))
    for result in results.values():
        result["images_per_s"] = statistics.median(result["images_per_s_each"])
    return {
        "runs": results,
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def thread_environment(threads):
    """Environment variables that give torch, TensorFlow and XLA `threads` CPU threads."""
    if threads is None:
        return {}
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} "
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={threads}".strip(),
    }


def _run_group(args, model_name, mode, variant, peers, batch_size):
    """One process: the zoo (or a variant) and its peers, timed alternately."""
    config = json.dumps([model_name, mode, variant, peers, batch_size])
    command = [sys.executable, __file__, *sys.argv[1:], "--one", config]
    load_before = os.getloadavg()[0]
    # JAX and torch share the GPU in one process: JAX must not take 75 % of it up front.
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.45", **os.environ, **thread_environment(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    result = {"model": model_name, "mode": mode, "variant": variant, "batch": batch_size}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        result["error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
    else:
        result.update(json.loads(lines[-1][len("RESULT ") :]))
    result["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    print(json.dumps(result), flush=True)
    return result


def main():
    args = parse_args()
    if args.readme_only:
        write_readme()
        return
    if args.one:
        model_name, mode, variant, peers, batch_size = json.loads(args.one)
        print("RESULT " + json.dumps(measure(model_name, mode, variant, peers, batch_size, args)), flush=True)
        return
    if os.environ.get("KERAS_BACKEND") != args.backend:
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    import keras
    import torch

    measurements, rows = [], []
    for model_name in args.models:
        for mode in args.modes:
            for batch_size in args.batch_size:
                group = _run_group(args, model_name, mode, "zoo", args.peers, batch_size)
                measurements.append(group)
                for variant in args.variants if mode in args.variant_modes else ():
                    measurements.append(_run_group(args, model_name, mode, variant, ["eager"], batch_size))
                if "error" not in group:
                    rows += _rows(args, model_name, mode, batch_size, group)
                # Written after every group: a run stopped part-way keeps what it measured.
                _write(args, keras, torch, rows, measurements)
    write_readme()


def _rows(args, model_name, mode, batch_size, group):
    """The result rows of one group: the zoo beside each peer."""
    zoo = group["runs"]["zoo"]
    rows = []
    for peer in args.peers:
        result = group["runs"][f"pytorch-{peer}"]
        row = {
            "backend": args.backend,
            "model": model_name,
            "mode": mode,
            "batch": batch_size,
            "precision": args.precision,
            "images_per_s": round(zoo["images_per_s"], 2),
            "peer": f"pytorch-{peer}",
            "peer_images_per_s": round(result["images_per_s"], 2),
            "ratio": round(zoo["images_per_s"] / result["images_per_s"], 3),
            "parameters_match": zoo["parameters"] == result["parameters"],
        }
        if args.peak_tflops and args.gflops_per_image:
            peak_images_per_s = args.peak_tflops * 1e12 / (args.gflops_per_image * 1e9)
            row["mfu"] = round(zoo["images_per_s"] / peak_images_per_s, 4)
            row["peer_mfu"] = round(result["images_per_s"] / peak_images_per_s, 4)
        rows.append(row)
    return rows


def _write(args, keras, torch, rows, measurements):
    payload = {
        "benchmark": "throughput",
        "backend": args.backend,
        "device": args.device,
        "keras": keras.__version__,
        "torch": torch.__version__,
        "machine": common.machine(),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "input_dtype": args.input_dtype,
        "steps": args.steps,
        "repeats": args.repeats,
        "optimizer": f"SGD(learning_rate={LEARNING_RATE}, momentum={MOMENTUM})",
        "threads": args.threads or "framework default",
        "peak_tflops": args.peak_tflops,
        "gflops_per_image": args.gflops_per_image,
        "command": "python bench/throughput/run.py " + " ".join(sys.argv[1:]),
        "rows": rows,
        "measurements": measurements,
    }
    common.write_json(RESULTS / f"{args.device}-{args.backend}.json", payload)


# Results that were here and are not this harness's: kept in git history only.
REMOVED = (
    "Earlier results, removed from this folder (git history keeps them; the last "
    "commit that has them is `efac4e6`): `results/legacy/`, the earlier harness's "
    "fine-tuning images/s on JAX, TF and torch (zoo only, no peer; 96 px, batch 16, "
    "CPU; `git show efac4e6:bench/throughput/results/legacy/finetune_throughput.md`), "
    "and `results/explore-onednn-jax.json`, an exploratory 3-step JAX run beside the "
    "eager peer under load 12-16 (`git show "
    "efac4e6:bench/throughput/results/explore-onednn-jax.json`)."
)


def _load_range(measurements):
    loads = [value for group in measurements for value in group["load_average_before_after"]]
    return f"{min(loads):.1f}-{max(loads):.1f}"


def write_readme():
    rows, variants, notes = [], [], []
    backends = []
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        backends.append(result["backend"])
        for row in result["rows"]:
            mfu = (f"{row['mfu']:.1%} / {row['peer_mfu']:.1%}" if "mfu" in row else "")
            rows.append(
                [result["device"], row["backend"], row["model"], row["mode"], row["batch"],
                 row.get("precision", result.get("precision", "float32")),
                 f"{row['images_per_s']:.1f}", row["peer"], f"{row['peer_images_per_s']:.1f}",
                 f"**{row['ratio']:.2f}**", mfu, "yes" if row["parameters_match"] else "NO"]
            )
        for group in result["measurements"]:
            if "error" in group:
                variants.append([result["device"], result["backend"], group["model"], group["mode"],
                                 group.get("batch", ""), group["variant"],
                                 "failed: " + group["error"][:80]] + [""] * 7)
                continue
            run = group["runs"][group["variant"]]
            eager = group["runs"]["pytorch-eager"]["images_per_s"]
            variants.append(
                [result["device"], result["backend"], group["model"], group["mode"],
                 group.get("batch", result["batch_size"]), group["variant"],
                 run["jit_compile"], run["steps_per_execution"], run["dtype_policy"],
                 run["image_data_format"], f"{run['images_per_s']:.1f}", f"{eager:.1f}",
                 f"{run['images_per_s'] / eager:.2f}", f"{run['warmup_s']:.0f}"]
            )
        notes.append(
            f"- `{path.name}`: {result['image_size']} px, batch {result['batch_size']}, "
            f"{result.get('precision', 'float32')}, {result.get('input_dtype', 'float32')} input "
            f"images, {result['steps']} steps per pass, median of {result['repeats']} timed passes, "
            f"{result['optimizer']}, threads: {result['threads']}, Keras {result['keras']}, "
            f"torch {result['torch']}, {result['machine']['cpu_count']} CPUs, load average "
            f"{_load_range(result['measurements'])}; `{result['command']}`"
        )
    body = (
        "Training images/s of the zoo's full fine-tune and frozen-backbone steps beside the native "
        "PyTorch peer (the same architecture in plain torch, parameter counts checked equal, "
        "channels_last, eager and `torch.compile`). Each (model, mode) runs in one process that "
        "warms every contender up, then alternates their timed passes, so all see the same load. "
        "ratio = zoo / peer. The machine is shared with other jobs: absolute numbers move with its "
        "load, compare ratios. On a GPU, MFU is images/s x training FLOP per image (ResNet50 at "
        "224 px: ~24.7 GFLOP) over the device's dense bf16 peak. See `run.py` for the method.\n\n"
        + common.markdown_table(
            ["device", "backend", "model", "mode", "batch", "precision", "zoo img/s", "peer",
             "peer img/s", "ratio", "MFU zoo / peer", "params equal"],
            rows,
        )
        + "\n\nThe zoo's defaults and the variants tried against them, each beside the eager peer "
        "in its own process:\n\n"
        + common.markdown_table(
            ["device", "backend", "model", "mode", "batch", "variant", "jit", "steps/exec", "policy", "format",
             "img/s", "eager peer img/s", "ratio", "warm-up s"],
            variants,
        )
        + "\n\nRuns:\n\n" + "\n".join(notes)
        + "\n\n" + REMOVED + "\n"
    )
    common.write_readme(HERE, "Throughput: zoo models vs native PyTorch", common.not_measured(backends) + body)


if __name__ == "__main__":
    main()
