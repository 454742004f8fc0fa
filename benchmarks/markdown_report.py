"""Shared by the benchmark scripts: the machine and versions they ran on, and the sections
they write into docs/benchmarks.md (each between its own markers, replaced on a rerun)."""

import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys

import keras


def cpu_model():
    """Returns the CPU model name from `lscpu`, or `platform.processor()` without it."""
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def accelerator():
    """Returns the device the backend computes on, e.g. "CPU" or "GPU NVIDIA H200"."""
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return "CPU"
        return f"{device.platform.upper()} {device.device_kind}"
    if keras.backend.backend() == "torch":
        import torch

        return f"GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "CPU"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return "GPU " + details.get("device_name", gpus[0].name)


def versions():
    """Returns "python X, keras Y, <backend> Z" for the libraries that ran the benchmark."""
    backend = keras.backend.backend()
    packages = ["keras", *(("jax", "jaxlib") if backend == "jax" else ("tensorflow",)), "numpy"]
    found = [f"{name} {importlib.metadata.version(name)}" for name in packages]
    return ", ".join([f"python {platform.python_version()}", *found, f"backend {backend}"])


def header_lines(device):
    """The command, date, machine and versions lines every section starts with.

    Args:
        device: str. From `accelerator()`.

    Returns:
        list of str (markdown bullet lines).
    """
    env = f"KERAS_BACKEND={os.environ['KERAS_BACKEND']} " if "KERAS_BACKEND" in os.environ else ""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- Command: `{env}python {shlex.join(sys.argv)}`",
        f"- Date: {date}",
        f"- Machine: {cpu_model()} ({platform.processor() or platform.machine()}), "
        f"{os.cpu_count()} CPUs, {platform.platform()}; computing on {device}",
        f"- Versions: {versions()}",
    ]


def markers(key):
    """The start and end markers of the section named `key`."""
    return f"<!-- {key}:start -->", f"<!-- {key}:end -->"


def write_markdown(path, key, body):
    """Puts a section into the markdown file, replacing the previous one with the same key.

    Args:
        path: str. The file; created with a `# Benchmarks` header when missing.
        key: str. The section's name in its markers.
        body: str. The section's text, without markers.
    """
    start_marker, end_marker = markers(key)
    section = f"{start_marker}\n{body}\n{end_marker}"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    start, end = text.find(start_marker), text.find(end_marker)
    if start != -1 and end > start:
        text = text[:start] + section + text[end + len(end_marker) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def publish(section, path, key):
    """Prints a section and, when `path` is given, puts it into that markdown file.

    Args:
        section: str. The section's text, without markers.
        path: str or None. The markdown file (a script's --markdown), or None.
        key: str. The section's name in its markers.
    """
    print(section)
    if path:
        write_markdown(path, key, section)
        print(f"Wrote {path}")
