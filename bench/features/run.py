"""Head epochs on cached features vs the same head behind the frozen backbone.

The zoo's `feature_extraction/<task>` model (weights=None: only speed matters
here) trains on the offline `digits` training split read through
`keras_transfer.datasets.load` (tf.data: parallel decode/resize, prefetch; no
augmentation, fixed order), two ways, each in a fresh process so its peak RSS
is its own:

- `end_to_end`: `model.fit(dataset)`: every epoch runs the frozen backbone;
- `cached`: `keras_transfer.features.fit_cached(model, dataset,
  cache_dir=...)`: the backbone runs once (the extraction is timed and
  counted in the first epoch), then the head trains on the cached
  features; a second process reads the same cache back (`cached_reuse`);
- `cached_x4`: the cached path on the training set repeated 4 times, to show
  that peak memory follows the shard size, not the dataset.

Also timed: one pass over the input pipeline alone (images/s it can feed),
and the head epochs with `steps_per_execution` 1 and 32 (JAX/TF).

    python bench/features/run.py --backend jax

Writes `bench/features/results/<backend>.json` (top-level `"speedup"`: median
end-to-end epoch time / median cached head epoch time, epochs after the
first) and regenerates `bench/features/README.md`. The machine is shared:
compare within one file.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402

RESULTS = HERE / "results"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow", "torch"), required=True)
    parser.add_argument("--task", default="feature_extraction/resnet50")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def _data(args, repeat=1):
    from keras_transfer import datasets

    dataset = datasets.load(
        "digits", "train", image_size=args.image_size, batch_size=args.batch_size,
        augment=False, shuffle=False,
    )
    return dataset.repeat(repeat) if repeat > 1 else dataset


def _model(args):
    import keras

    from keras_transfer import zoo

    keras.utils.set_random_seed(0)
    side = args.image_size
    return zoo.build(args.task, 10, weights=None, input_shape=(side, side, 3))


class _EpochTimer:
    def __init__(self):
        import keras

        times = self.times = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.start)

        self.callback = Timer()


def run_end_to_end(args):
    dataset = _data(args)
    start = time.perf_counter()
    images = sum(len(x) for x, _ in dataset)
    pipeline_s = time.perf_counter() - start
    model = _model(args)
    timer = _EpochTimer()
    model.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[timer.callback])
    return {"images": images, "epoch_s": timer.times, "pipeline_images_per_s": images / pipeline_s}


def run_cached(args, cache_dir, repeat=1, steps_per_execution=(1,)):
    """`fit_cached` as a user calls it; extraction = its time outside the epochs."""
    from keras_transfer import features

    dataset = _data(args, repeat)
    model = _model(args)
    result = {}
    for steps in steps_per_execution:
        model.compile_from_config({**model.get_compile_config(), "steps_per_execution": steps})
        timer = _EpochTimer()
        start = time.perf_counter()
        features.fit_cached(
            model, dataset, cache_dir=cache_dir, batch_size=args.batch_size,
            epochs=args.epochs, verbose=0, callbacks=[timer.callback],
        )
        total = time.perf_counter() - start
        result[f"steps_per_execution_{steps}"] = {
            "epoch_s": timer.times, "outside_epochs_s": total - sum(timer.times),
        }
    manifest = json.loads((pathlib.Path(cache_dir) / "train" / "manifest.json").read_text())
    folder = pathlib.Path(cache_dir) / "train"
    first = result[f"steps_per_execution_{steps_per_execution[0]}"]
    return {
        "images": manifest["num_examples"],
        "feature_shape": manifest["feature_shape"],
        "shards": len(manifest["shards"]),
        "cache_bytes": sum(path.stat().st_size for path in folder.iterdir()),
        "epoch_s": first["epoch_s"],
        "extract_s": first["outside_epochs_s"],
        **result,
    }


def _in_process(args, name, cache_dir=None):
    """Runs one measurement in a fresh process; returns its result and peak RSS."""
    command = [sys.executable, __file__, *sys.argv[1:], "--one", json.dumps([name, cache_dir])]
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    print(name, json.dumps(result), flush=True)
    return result


def _one(args, name, cache_dir):
    if name == "end_to_end":
        result = run_end_to_end(args)
    elif name == "cached":
        import keras

        steps = (1,) if keras.backend.backend() == "torch" else (1, 32)
        result = run_cached(args, cache_dir, steps_per_execution=steps)
    elif name == "cached_reuse":
        result = run_cached(args, cache_dir)
    else:
        result = run_cached(args, cache_dir, repeat=4)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _images_per_s(result, times):
    later = times[1:] or times
    return result["images"] / statistics.median(later)


def main():
    args = parse_args()
    if args.one:
        name, cache_dir = json.loads(args.one)
        print("RESULT " + json.dumps(_one(args, name, cache_dir)), flush=True)
        return
    if os.environ.get("KERAS_BACKEND") != args.backend:
        env = dict(os.environ, KERAS_BACKEND=args.backend)
        sys.exit(subprocess.call([sys.executable, *sys.argv], env=env))

    import keras

    scratch = tempfile.mkdtemp(prefix="bench-features-")
    try:
        runs = {"end_to_end": _in_process(args, "end_to_end")}
        runs["cached"] = _in_process(args, "cached", os.path.join(scratch, "x1"))
        runs["cached_reuse"] = _in_process(args, "cached_reuse", os.path.join(scratch, "x1"))
        runs["cached_x4"] = _in_process(args, "cached_x4", os.path.join(scratch, "x4"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    end_to_end, cached = runs["end_to_end"], runs["cached"]
    e2e_epoch = statistics.median(end_to_end["epoch_s"][1:])
    head_epoch = statistics.median(cached["epoch_s"][1:])
    summary = {
        "end_to_end_images_per_s": _images_per_s(end_to_end, end_to_end["epoch_s"]),
        "cached_head_images_per_s": _images_per_s(cached, cached["epoch_s"]),
        "first_epoch_s": {
            "end_to_end": end_to_end["epoch_s"][0],
            "cached (extraction + head epoch)": cached["extract_s"] + cached["epoch_s"][0],
            "cached_reuse (read back + head epoch)": runs["cached_reuse"]["extract_s"]
            + runs["cached_reuse"]["epoch_s"][0],
        },
        "total_s": {
            "end_to_end": sum(end_to_end["epoch_s"]),
            "cached": cached["extract_s"] + sum(cached["epoch_s"]),
        },
        "peak_rss_mib": {name: run["peak_rss_mib"] for name, run in runs.items()},
    }
    if "steps_per_execution_32" in cached:
        summary["head_epoch_s_by_steps_per_execution"] = {
            steps: statistics.median(cached[f"steps_per_execution_{steps}"]["epoch_s"][1:])
            for steps in (1, 32)
        }
    payload = {
        "benchmark": "features",
        "backend": args.backend,
        "keras": keras.__version__,
        "machine": common.machine(),
        "task": args.task,
        "data": "digits train split",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "command": "python bench/features/run.py " + " ".join(sys.argv[1:]),
        "speedup": e2e_epoch / head_epoch,
        "speedup_over_the_run_including_extraction": summary["total_s"]["end_to_end"] / summary["total_s"]["cached"],
        "summary": summary,
        "runs": runs,
    }
    common.write_json(RESULTS / f"{args.backend}.json", payload)
    write_readme()


def write_readme():
    rows, notes = [], []
    backends = []
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        backends.append(result["backend"])
        summary, runs = result["summary"], result["runs"]
        rss = summary["peak_rss_mib"]
        rows.append([
            result["backend"],
            f"{summary['end_to_end_images_per_s']:.0f}",
            f"{summary['cached_head_images_per_s']:.0f}",
            f"**{result['speedup']:.0f}x**",
            f"{runs['end_to_end']['epoch_s'][0]:.1f}",
            f"{runs['cached']['extract_s']:.1f}",
            f"{runs['cached_reuse']['extract_s']:.1f}",
            f"{result['speedup_over_the_run_including_extraction']:.1f}x",
            f"{rss['end_to_end']:.0f} / {rss['cached']:.0f} / {rss['cached_x4']:.0f}",
            f"{runs['end_to_end']['pipeline_images_per_s']:.0f}",
        ])
        by_steps = summary.get("head_epoch_s_by_steps_per_execution")
        steps_note = (
            f"; head epoch {by_steps['1'] * 1e3:.0f} ms at steps_per_execution=1, "
            f"{by_steps['32'] * 1e3:.0f} ms at 32" if by_steps else ""
        )
        notes.append(
            f"- `{path.name}`: {result['task']} (weights=None), {result['data']} "
            f"({runs['cached']['images']} images, x4: {runs['cached_x4']['images']}) at "
            f"{result['image_size']} px, batch {result['batch_size']}, {result['epochs']} epochs; "
            f"cache {runs['cached']['cache_bytes'] / 2**20:.1f} MiB in {runs['cached']['shards']} "
            f"shard(s){steps_note}; Keras {result['keras']}, {result['machine']['cpu_count']} CPUs; "
            f"`{result['command']}`"
        )
    body = (
        "Training a head on cached backbone features (`keras_transfer.features.fit_cached`) vs "
        "the same zoo model fitted end to end (the frozen backbone runs every epoch). "
        "img/s: epochs after the first (median). speedup = end-to-end epoch time / cached "
        "head epoch time. First epoch: end to end incl. compilation; extraction: the backbone's "
        "one pass incl. compilation; reuse: reading a second run's cache back. "
        "Peak RSS of each process (end to end / cached / cached on 4x the data). "
        "The machine is shared with other jobs: compare within a row.\n\n"
        + common.markdown_table(
            ["backend", "end-to-end img/s", "cached head img/s", "speedup", "e2e first epoch s",
             "extraction s", "reuse s", "whole-run speedup", "peak RSS MiB", "pipeline img/s"],
            rows,
        )
        + "\n\nRuns:\n\n" + "\n".join(notes) + "\n"
    )
    common.write_readme(HERE, "Features: cached head training vs end to end", common.not_measured(backends) + body)


if __name__ == "__main__":
    main()
