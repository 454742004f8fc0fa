"""`train.strategy` under KERAS_BACKEND=jax, where tf.distribute does not drive Keras: Keras'
own distribution API (`keras.distribution`) over the JAX devices.

    auto          DataParallel over all devices when there are several, else one device
    one-device    one device
    mirrored      DataParallel over all devices
    tpu           DataParallel over the TPU's cores (JAX must see a TPU: Colab's TPU runtimes
                  and TPU VMs ship JAX, not a TensorFlow that TPUStrategy works with)
    multi-worker  `jax.distributed` over several processes (hosts), then DataParallel over every
                  device of every process; see `initialize_cluster`

`train.model_parallel=M` (BERT only) lays the devices out as a (batch, model) mesh of
(N / M, M) and shards the encoder's weights over the model axis (`bert_layout_map`): for
encoders too large for one device's memory.

The input pipeline stays tf.data (TensorFlow's CPU build beside JAX); Keras turns its batches
into NumPy and then into arrays sharded over the devices. With several processes, every
process builds the same global batches (the same seed) and feeds its own slice of each
(`process_slice`), so all processes step through the same shapes.
"""

import json
import os

import keras
import tensorflow as tf

from tfrnn.errors import ConfigError

# Keras' weight paths of a keras-hub BERT encoder -> how each weight splits over the "model" axis
# (Megatron-style: attention heads and the feed-forward's inner units; the rest replicated).
BERT_LAYOUT = {
    r".*token_embedding/embeddings": (None, "model"),
    r".*self_attention_layer/(query|key|value)/kernel": (None, "model", None),
    r".*self_attention_layer/(query|key|value)/bias": ("model", None),
    r".*self_attention_layer/attention_output/kernel": ("model", None, None),
    r".*feedforward_intermediate_dense/kernel": (None, "model"),
    r".*feedforward_intermediate_dense/bias": ("model",),
    r".*feedforward_output_dense/kernel": ("model", None),
}


class JaxDistribution:
    """A `keras.distribution` over JAX devices, used where a tf.distribute strategy is.

    Args:
        distribution: keras.distribution.Distribution. DataParallel or ModelParallel.
        replicas: int. Data-parallel replicas: each takes `batch_size / replicas` of a batch.
    """

    def __init__(self, distribution, replicas):
        self.distribution = distribution
        self.num_replicas_in_sync = replicas

    @property
    def devices(self):
        """list of str: the devices of the mesh (every process's)."""
        return list(self.distribution.device_mesh.devices.flatten())

    @property
    def model_parallel(self):
        """int: devices that share one copy of the model (1 for data parallelism)."""
        return len(self.devices) // self.num_replicas_in_sync

    def scope(self):
        """Variables made and steps run inside are laid out over the devices, batches split."""
        return self.distribution.scope()


def _platform():
    import jax

    return jax.devices()[0].platform


def process_count():
    """Processes of a `jax.distributed` cluster (1 without one, and under TensorFlow)."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def process_index():
    """This process's index in a `jax.distributed` cluster (0: the one that writes the run)."""
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def on_tpu():
    """Whether JAX computes on a TPU."""
    return keras.backend.backend() == "jax" and _platform() == "tpu"


def _cluster_from_tf_config():
    """(coordinator address, processes, this process's id) from TF_CONFIG, or None without one.
    The coordinator is the chief, else worker 0; processes count the chief first."""
    if "TF_CONFIG" not in os.environ:
        return None
    try:
        tf_config = json.loads(os.environ["TF_CONFIG"])
        cluster, task = tf_config["cluster"], tf_config["task"]
        hosts = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
        index = int(task["index"]) + (len(cluster.get("chief", [])) if task["type"] == "worker" else 0)
    except (KeyError, ValueError, TypeError):
        raise ConfigError('TF_CONFIG: expected {"cluster": {"worker": [...]}, "task": {...}}') from None
    return hosts[0], len(hosts), index


def initialize_cluster():
    """Joins this process to a `jax.distributed` cluster (before JAX computes anything).

    The cluster comes from, in order: KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES /
    _PROCESS_ID (Keras' variables), TF_CONFIG (as for TensorFlow's multi-worker strategy), or
    JAX's own detection (Cloud TPU pods, SLURM, Open MPI). On CPUs the collectives go over gloo.
    """
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    from_tf_config = None if "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ else _cluster_from_tf_config()
    try:
        if from_tf_config is None:
            keras.distribution.initialize()
        else:
            keras.distribution.initialize(*from_tf_config)
    except (RuntimeError, ValueError) as error:
        line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"train.strategy=multi-worker: cannot join the JAX cluster ({line})") from None


def _named_devices(devices):
    """Keras' names of the JAX devices `devices` names (/gpu:0 or gpu:0), checked."""
    known = keras.distribution.list_devices()
    chosen = [name.lower().lstrip("/") for name in devices]
    for name in chosen:
        if name not in known:
            raise ConfigError(f"train.devices: {name!r} does not exist here (found {', '.join(known)})")
    return chosen


def bert_layout_map(mesh):
    """`BERT_LAYOUT` as a keras.distribution.LayoutMap over `mesh` (axes "batch", "model")."""
    layout_map = keras.distribution.LayoutMap(mesh)
    for path, axes in BERT_LAYOUT.items():
        layout_map[path] = axes
    return layout_map


def make_jax_distribution(name, devices=(), model_parallel=1, kind="rnn"):
    """The distribution a run trains under with the JAX backend (see the module docstring).

    Args:
        name: str. A `tfrnn.choices.STRATEGIES` name.
        devices: list of str. Devices to use (default: all).
        model_parallel: int. Devices per copy of the model (BERT only).
        kind: str. The model kind (`model.kind`).

    Returns:
        JaxDistribution, or None for one device.

    Raises:
        ConfigError: no TPU for "tpu", a device that does not exist, a model_parallel that does
            not fit, no cluster to join.
    """
    if name == "multi-worker":
        initialize_cluster()
    chosen = _named_devices(devices) if devices else keras.distribution.list_devices()
    if name == "tpu" and _platform() != "tpu":
        raise ConfigError(f"train.strategy=tpu: JAX finds no TPU here (its devices: {', '.join(chosen)})")
    if model_parallel > 1:
        if kind != "bert":
            raise ConfigError(f"train.model_parallel={model_parallel}: only BERT models shard their weights")
        if name == "one-device" or len(chosen) % model_parallel:
            raise ConfigError(
                f"train.model_parallel={model_parallel}: must divide the {len(chosen) if name != 'one-device' else 1}"
                " devices the run uses"
            )
        mesh = keras.distribution.DeviceMesh(
            (len(chosen) // model_parallel, model_parallel), ("batch", "model"), devices=chosen
        )
        distribution = keras.distribution.ModelParallel(
            layout_map=bert_layout_map(mesh), batch_dim_name="batch", auto_shard_dataset=False
        )
        return JaxDistribution(distribution, len(chosen) // model_parallel)
    if name == "one-device" or (name == "auto" and len(chosen) < 2):
        return None
    return JaxDistribution(keras.distribution.DataParallel(devices=chosen, auto_shard_dataset=False), len(chosen))


def process_slice(dataset):
    """This process's rows of each global batch of `dataset` (all of them with one process).

    Args:
        dataset: tf.data.Dataset of tensors `(global_batch, ...)` (any structure), with a static
            batch size, the same in every process.

    Returns:
        tf.data.Dataset of the same structure, `global_batch / processes` rows each.
    """
    processes, index = process_count(), process_index()
    if processes == 1:
        return dataset
    size = tf.nest.flatten(dataset.element_spec)[0].shape[0] // processes
    return dataset.map(lambda *batch: tf.nest.map_structure(lambda t: t[index * size : (index + 1) * size], batch))
