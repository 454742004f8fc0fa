"""The `tf.distribute` strategy a run trains under (`train.strategy`, `train.devices`)."""

import tensorflow as tf

from tfrnn.errors import ConfigError


def _split_cpu(devices):
    """Splits the CPU into as many logical CPUs as `devices` names (/cpu:0, /cpu:1, ...), so
    mirrored training can run on a machine without accelerators (tests, debugging)."""
    cpus = [int(d.rsplit(":", 1)[1]) for d in devices if d.lower().startswith("/cpu:")]
    physical = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(physical) or [None]
    if not cpus or max(cpus) < len(configured):
        return
    try:
        tf.config.set_logical_device_configuration(
            physical, [tf.config.LogicalDeviceConfiguration()] * (max(cpus) + 1)
        )
    except RuntimeError:  # TensorFlow has started; the devices check below reports it
        pass


def make_strategy(name, devices=None):
    """Builds a strategy.

    Args:
        name: str. "auto" (MirroredStrategy over `devices` or all GPUs when there are several,
            else the default strategy), "one-device" or "mirrored".
        devices: list of str or None. "one-device" uses the first (default: the first GPU, else
            the CPU); "mirrored" uses them all (default: all GPUs, else the CPU).

    Returns:
        tf.distribute.Strategy.

    Raises:
        ConfigError: an unknown name or a device that does not exist.
    """
    _split_cpu(devices or [])
    gpus = [f"/gpu:{i}" for i in range(len(tf.config.list_logical_devices("GPU")))]
    known = {d.name.lower().replace("/device:", "/").replace("/job:localhost/replica:0/task:0", "")
             for d in tf.config.list_logical_devices()}
    for device in devices or []:
        if device.lower() not in known:
            raise ConfigError(f"train.devices: {device!r} does not exist here (found {', '.join(sorted(known))})")
    if name == "auto":
        chosen = devices or gpus
        return tf.distribute.MirroredStrategy(chosen) if len(chosen) > 1 else tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy((devices or gpus or ["/cpu:0"])[0])
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices or gpus or ["/cpu:0"])
    raise ConfigError(f"train.strategy={name!r}: expected auto, one-device or mirrored")
