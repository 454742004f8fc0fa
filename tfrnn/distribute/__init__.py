"""The `tf.distribute` strategy a run trains under (`train.strategy`, `train.devices`): one
builder in `BUILDERS` for each `tfrnn.choices.STRATEGIES` name.

    auto          a TPU when one is attached (TPU_NAME or COLAB_TPU_ADDR set, or a TPU VM's
                  /dev/accel0), else MirroredStrategy over `devices` or all GPUs when there are
                  several, else the default strategy
    one-device    OneDeviceStrategy on the first of `devices` (default: the first GPU, else the CPU)
    mirrored      MirroredStrategy over `devices` (default: all GPUs, else the CPU); naming CPUs
                  (/cpu:0, /cpu:1) splits the CPU into that many logical devices
    multi-worker  MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (one process a worker)
    tpu           TPUStrategy on the TPU that TPUClusterResolver finds (TPU_NAME, Colab, TPU VM)

Only the chief (the "chief" task, else worker 0) keeps what a run writes; `is_chief` tells.

With KERAS_BACKEND=jax, tf.distribute does not drive Keras: every name maps to Keras'
distribution API instead (`tfrnn.distribute.jax_distribution`), TPUs and several hosts included.

`auto_jit_compile` and `auto_precision` say what `train.jit_compile=auto` and
`train.precision=auto` mean under a strategy.

`tfrnn.distribute.keras_compat` patches Keras' trainer for the mirrored and multi-worker
strategies (keras-team/keras#20585).
"""

import json
import os
import re

import keras
import tensorflow as tf

from tfrnn.choices import STRATEGIES
from tfrnn.distribute import jax_distribution
from tfrnn.distribute.jax_distribution import JaxDistribution, make_jax_distribution
from tfrnn.distribute.keras_compat import patch_multi_worker_fit
from tfrnn.errors import ConfigError


def _split_cpu(devices):
    """Splits the CPU into as many logical CPUs as `devices` names (/cpu:0, /cpu:1, ...), so
    mirrored training can run on a machine without accelerators (tests, debugging)."""
    cpus = [int(match.group(1)) for d in devices if (match := re.fullmatch(r"/cpu:(\d+)", d.lower()))]
    physical = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(physical) or [None]
    if not cpus or max(cpus) < len(configured):
        return
    try:
        tf.config.set_logical_device_configuration(physical, [tf.config.LogicalDeviceConfiguration()] * (max(cpus) + 1))
    except RuntimeError:  # TensorFlow has started; the devices check reports it
        pass


def _check_devices(devices):
    known = {
        d.name.lower().replace("/device:", "/").replace("/job:localhost/replica:0/task:0", "")
        for d in tf.config.list_logical_devices()
    }
    for device in devices:
        if device.lower() not in known:
            raise ConfigError(f"train.devices: {device!r} does not exist here (found {', '.join(sorted(known))})")


def tpu_attached():
    """Whether this machine looks attached to a TPU (no network probe)."""
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")) or os.path.exists("/dev/accel0")


def _local_devices(devices):
    """Prepares the named devices of this machine (splitting the CPU where asked) and checks them.

    Args:
        devices: list of str. Device names (/gpu:0, /cpu:1); may be empty.

    Returns:
        list of str, the GPUs there are (/gpu:0, /gpu:1, ...).

    Raises:
        ConfigError: a device that does not exist.
    """
    _split_cpu(devices)
    _check_devices(devices)
    return [f"/gpu:{i}" for i in range(len(tf.config.list_logical_devices("GPU")))]


def _auto(devices):
    """A TPU when one is attached and no devices are named, else mirrored over the named devices
    or all GPUs when there are several, else the named device or the default strategy."""
    if not devices and tpu_attached():
        return _tpu(devices)
    gpus = _local_devices(devices)
    chosen = devices or gpus
    if len(chosen) > 1:
        return _mirrored(chosen)
    return tf.distribute.OneDeviceStrategy(chosen[0]) if devices else tf.distribute.get_strategy()


def _one_device(devices):
    """OneDeviceStrategy on the first named device, else the first GPU, else the CPU."""
    gpus = _local_devices(devices)
    return tf.distribute.OneDeviceStrategy((devices or gpus or ["/cpu:0"])[0])


def _mirrored(devices):
    """MirroredStrategy over the named devices, else all GPUs, else the CPU."""
    gpus = _local_devices(devices)
    patch_multi_worker_fit()  # the symbolic build of keras-team/keras#20585 also fails on ragged buckets
    return tf.distribute.MirroredStrategy(devices or gpus or ["/cpu:0"])


def _tpu(devices):
    """TPUStrategy on the TPU that TPUClusterResolver finds (`devices` is not used)."""
    if not tpu_attached():
        raise ConfigError("train.strategy=tpu: no TPU here (set TPU_NAME, or run on a Colab TPU runtime or a TPU VM)")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        raise ConfigError(f"train.strategy=tpu: cannot connect to the TPU ({str(error).splitlines()[0]})") from None
    return tf.distribute.TPUStrategy(resolver)


def _multi_worker(devices):
    """MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (`devices` is not used)."""
    try:
        json.loads(os.environ["TF_CONFIG"])["cluster"]
    except (KeyError, ValueError, TypeError):
        raise ConfigError(
            "train.strategy=multi-worker: TF_CONFIG must describe the cluster, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    patch_multi_worker_fit()  # keras-team/keras#20585
    # Collectives give up after this long when a worker stops answering, instead of hanging.
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=120)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


# train.strategy -> its builder under TensorFlow, taking the list of `train.devices` (the names:
# tfrnn.choices.STRATEGIES).
BUILDERS = {"auto": _auto, "one-device": _one_device, "mirrored": _mirrored, "multi-worker": _multi_worker, "tpu": _tpu}


def make_strategy(name, devices=None, model_parallel=1, kind="rnn"):
    """Builds a strategy; call it before TensorFlow (or JAX) runs anything.

    Args:
        name: str. A `tfrnn.choices.STRATEGIES` name (see the module docstring).
        devices: list of str or None. For auto, one-device and mirrored.
        model_parallel: int. Devices per copy of the model (JAX backend, BERT only).
        kind: str. The model kind (`model.kind`).

    Returns:
        tf.distribute.Strategy, or JaxDistribution under the JAX backend with several devices.

    Raises:
        ConfigError: an unknown name, a device that does not exist, no TPU, no TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"train.strategy={name!r}: expected one of {', '.join(STRATEGIES)}")
    if keras.backend.backend() == "jax":
        distribution = make_jax_distribution(name, list(devices or []), model_parallel, kind)
        return distribution or tf.distribute.get_strategy()
    if model_parallel > 1:
        raise ConfigError(f"train.model_parallel={model_parallel}: needs KERAS_BACKEND=jax")
    return BUILDERS[name](list(devices or []))


def on_tpu(strategy):
    """Whether `strategy` computes on a TPU (TensorFlow's TPUStrategy, or JAX on a TPU)."""
    return isinstance(strategy, tf.distribute.TPUStrategy) or jax_distribution.on_tpu()


def auto_jit_compile(strategy):
    """What `train.jit_compile=auto` means: compile under JAX (op by op is 100x slower), on a
    TPU and on one GPU; not on TensorFlow's CPU, where XLA measured slower (docs/benchmarks.md),
    nor under a tf.distribute strategy over several replicas (Keras' own `auto` rule)."""
    if keras.backend.backend() == "jax" or on_tpu(strategy):
        return True
    one_replica = strategy.num_replicas_in_sync == 1 and not is_multi_worker(strategy)
    return one_replica and bool(tf.config.list_logical_devices("GPU"))


def auto_precision(strategy):
    """What `train.precision=auto` means: mixed bfloat16 on a TPU, else float32."""
    return "mixed_bfloat16" if on_tpu(strategy) else "float32"


def is_multi_worker(strategy):
    """Whether `strategy` runs one process of a cluster (MultiWorkerMirroredStrategy, or JAX
    with several processes)."""
    if isinstance(strategy, JaxDistribution):
        return jax_distribution.process_count() > 1
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process keeps the run's outputs: always, except on a non-chief worker (or
    a JAX process other than process 0)."""
    if isinstance(strategy, JaxDistribution):
        return jax_distribution.process_index() == 0
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def describe(strategy):
    """One line naming the strategy, its replicas and, for a worker, which one it is."""
    if isinstance(strategy, JaxDistribution):
        kind = type(strategy.distribution).__name__
        line = f"keras.distribution.{kind} over {len(strategy.devices)} JAX devices"
        if strategy.model_parallel > 1:
            line += f" ({strategy.num_replicas_in_sync} replicas x {strategy.model_parallel} model shards)"
        if jax_distribution.process_count() > 1:
            line += f", process {jax_distribution.process_index()} of {jax_distribution.process_count()}"
        return line
    line = f"{type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s)"
    resolver = getattr(strategy, "cluster_resolver", None)
    if is_multi_worker(strategy) and resolver is not None:
        line += f", task {resolver.task_type}:{resolver.task_id}{' (chief)' if is_chief(strategy) else ''}"
    return line
