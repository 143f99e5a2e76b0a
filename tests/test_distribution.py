"""Transfer models build and train on 2 devices: JAX DataParallel, TF MirroredStrategy.

The device count must be set before JAX/TensorFlow initialise, so each backend
trains in a fresh process (tests/distributed_worker.py) on 2 virtual CPUs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")


@pytest.fixture(scope="module")
def report():
    import keras

    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        pytest.skip(f"multi-device training is tested on JAX and TensorFlow, not {backend}")
    env = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    result = subprocess.run(
        [sys.executable, WORKER], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stderr[-4000:]
    return backend, json.loads(lines[-1][len("REPORT ") :])


def test_two_devices_and_replicas(report):
    backend, data = report
    assert data["devices"] == 2 and data["replicas"] == 2
    if backend == "jax":
        # DataParallel splits the batch axis across devices.
        assert data["data_axes"] == ["batch", None, None, None]


@pytest.mark.parametrize("model", ["transfer", "zoo_tiny_cnn"])
def test_training_reduces_loss_and_updates_replicated_variables(report, model):
    backend, data = report
    run = data[model]
    losses = np.array(run["losses"])
    assert np.all(np.isfinite(losses)) and np.all(np.diff(losses) < 0), losses
    assert losses[-1] < losses[0] - 0.02, losses
    assert run["change"]["head_kernel"] > 1e-3
    for name in ("head_kernel", "backbone_kernel"):
        if name in run["layout"]:
            # Trained weights live on both devices, with identical copies.
            layout = run["layout"][name]
            assert layout["devices"] == 2 and layout["replicated"], (name, layout)
            if backend == "tensorflow":
                assert layout["type"] == "MirroredVariable", (name, layout)


def test_backbone_and_batchnorm_statistics_train(report):
    backend, data = report
    run = data["transfer"]
    assert run["change"]["backbone_kernel"] > 1e-4
    assert run["change"]["bn_moving_mean"] > 1e-4
    layout = run["layout"]["bn_moving_mean"]
    assert layout["devices"] == 2
    if backend == "jax":
        # One global update from the whole batch, replicated.
        assert layout["replicated"]
    else:
        # Keras 3.15 creates BN moving statistics with aggregation NONE: under
        # MirroredStrategy each replica updates its copy from its own half of
        # the batch and the copies drift apart (replica 0's is what is saved).
        # BatchNormalization(synchronized=True) averages the batch statistics.
        # This assertion fails once Keras synchronises them; then update it.
        assert not layout["replicated"]
