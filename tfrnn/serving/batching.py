"""Server-side batching, as TF Serving's `--enable_batching`: concurrent Predict requests to the
same signature of the same version are run as one batch, then split back.

TF Serving's semantics (tensorflow_serving/batching/batching_session.cc over
tensorflow/core/kernels/batching_util/shared_batch_scheduler.h), with `BatchingParameters`
read from the same text proto (`--batching_parameters_file`; unset fields take
BasicBatchScheduler's defaults):
- A request's instances are one task; a task larger than `max_batch_size` is refused ("Task size
  N is larger than maximum input batch size M"); tasks are never split.
- A batch runs when its queue holds `max_batch_size` instances, or when its oldest task has
  waited `batch_timeout_micros` and one of the `num_batch_threads` threads is free (0: at once,
  with what is queued).
- More than `max_enqueued_batches` batches' worth of queued instances: the request is refused
  UNAVAILABLE ("The batch scheduling queue to which this task was submitted is full").
- `allowed_batch_sizes`: a batch is padded (with copies of its first instance) up to the next
  allowed size; the padding's outputs are dropped. The last allowed size must be max_batch_size.
- An error of the batched run is every task's error.

Deliberate difference: tasks whose inputs differ beyond the 0th dimension go to separate batches
(TF Serving fails the batch unless `pad_variable_length_inputs`, which tfrnn serve refuses).
tfrnn's exports take a 1-D string tensor, where this never happens.
"""

import dataclasses
import functools
import os
import re
import threading
import time
from pathlib import Path
from typing import Tuple

import numpy as np
import tensorflow as tf

from tfrnn.errors import ConfigError
from tfrnn.serving import predict
from tfrnn.serving.predict import Unavailable

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's BatchingParameters (session_bundle_config.proto), with BasicBatchScheduler's
    defaults.

    Args:
        max_batch_size: int. Most instances in one batch (and in one request).
        batch_timeout_micros: int. Longest wait of a task for its batch to fill.
        max_enqueued_batches: int. Queued instances beyond this many full batches are refused.
        num_batch_threads: int. Batches run at once (default: the CPU count).
        allowed_batch_sizes: tuple of int. Sizes batches are padded to; empty: any size.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: Tuple[int, ...] = ()

    def __post_init__(self):
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"batching parameters: {name} must be at least 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ConfigError(
                f"batching parameters: batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}"
            )
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] != self.max_batch_size):
            raise ConfigError(
                f"batching parameters: allowed_batch_sizes {list(sizes)} must increase and end with "
                f"max_batch_size ({self.max_batch_size})"
            )


_WRAPPED = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")
# Fields TF Serving reads that change nothing here (thread pool naming, splitting of large tasks,
# which TF Serving leaves off by default).
_IGNORED = ("thread_pool_name", "enable_large_batch_splitting")
_FIELD = re.compile(r"([A-Za-z_]+)\s*(?::\s*([^\s{}]+)|:?\s*\{\s*value\s*:\s*([^\s{}]+)\s*\})")


def read_batching_parameters(path):
    """Reads a BatchingParameters text proto (TF Serving's `--batching_parameters_file`, as
    `tfrnn export --batching` writes). tensorflow-serving-api does not ship that proto, so fields
    are read by pattern: `name { value: V }` for the wrapped ones, `allowed_batch_sizes: N`
    (repeated), `pad_variable_length_inputs: false`.

    Args:
        path: str or Path.

    Returns:
        (BatchingParameters, set of str): the parameters, and the names of the fields the file sets.

    Raises:
        ConfigError: an unreadable file, an unknown or malformed field (with its line), a value
            out of range, or `pad_variable_length_inputs: true`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the batching parameters file ({e.__class__.__name__})") from None
    fields, sizes, given = {}, [], set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        rest = _FIELD.sub(functools.partial(_read_field, fields, sizes, given, f"{path}:{number}"), line)
        if rest.strip():
            raise ConfigError(f"{path}:{number}: cannot read {rest.strip()!r} (expected `name {{ value: N }}`)")
    if sizes:
        fields["allowed_batch_sizes"] = tuple(sizes)
    try:
        return BatchingParameters(**fields), given
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _read_field(fields, sizes, given, where, match):
    """Reads one field into `fields` (or `sizes`, `given`); returns "" (what replaces it)."""
    name, plain, wrapped = match[1], match[2], match[3]
    value = wrapped if wrapped is not None else plain
    given.add(name)
    if name in _IGNORED:
        return ""
    if name == "pad_variable_length_inputs":
        if value not in ("true", "false"):
            raise ConfigError(f"{where}: pad_variable_length_inputs must be true or false")
        if value == "true":
            raise ConfigError(f"{where}: pad_variable_length_inputs is not supported by tfrnn serve")
        return ""
    if name not in (*_WRAPPED, "allowed_batch_sizes") or (name == "allowed_batch_sizes") != (plain is not None):
        known = ", ".join([*_WRAPPED, "allowed_batch_sizes", "pad_variable_length_inputs", *_IGNORED])
        raise ConfigError(f"{where}: unknown or malformed field {match[0]!r} (known: {known})")
    if not re.fullmatch(r"[0-9]+", value):
        raise ConfigError(f"{where}: {name} must be a non-negative integer, got {value!r}")
    if name == "allowed_batch_sizes":
        sizes.append(int(value))
    else:
        fields[name] = int(value)
    return ""


class _Task:
    """One request's tensors, waiting for its batch."""

    def __init__(self, tensors, size):
        self.tensors = tensors
        self.size = size
        self.inner_shapes = {name: tuple(t.shape[1:]) for name, t in tensors.items()}
        self.enqueued = time.monotonic()
        self.done = threading.Event()
        self.outputs = self.error = None


class BatchScheduler:
    """Runs Predict requests in batches (see the module's docstring), one queue per signature
    of a loaded version, `parameters.num_batch_threads` threads shared by all queues, oldest
    task first.

    Args:
        parameters: BatchingParameters.
    """

    def __init__(self, parameters):
        self.parameters = parameters
        self._condition = threading.Condition()
        self._queues = {}  # concrete function -> list of _Task, oldest first
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"tfrnn-batch-{i}", daemon=True)
            for i in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, function, inputs, max_instances=None):
        """`predict.run` through the batch queue of `function`: same arguments, result and errors,
        and UNAVAILABLE when the queue is full or the scheduler stopped."""
        tensors = predict.prepare(function, inputs, max_instances)
        size = _task_size(tensors)
        predict.check_instances(size, self.parameters.max_batch_size)
        task = _Task(tensors, size)
        limit = self.parameters.max_enqueued_batches * self.parameters.max_batch_size
        with self._condition:
            if self._stopped:
                raise Unavailable("The server is shutting down")
            queue = self._queues.setdefault(function, [])
            if sum(t.size for t in queue) + size > limit:
                raise Unavailable(QUEUE_FULL)
            queue.append(task)
            self._condition.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self):
        """Stops the threads after their current batch; queued requests are answered UNAVAILABLE."""
        with self._condition:
            self._stopped = True
            pending = [task for queue in self._queues.values() for task in queue]
            self._queues.clear()
            self._condition.notify_all()
        for task in pending:
            task.error = Unavailable("The server is shutting down")
            task.done.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _work(self):
        while True:
            with self._condition:
                batch = None
                while batch is None:
                    if self._stopped:
                        return
                    batch, wait = self._next_batch(time.monotonic())
                    if batch is None:
                        self._condition.wait(wait)
            self._execute(*batch)

    def _next_batch(self, now):
        """((function, tasks), None) for a batch due now, else (None, seconds to wait or None)."""
        timeout = self.parameters.batch_timeout_micros / 1e6
        wait = None
        for function, queue in sorted(self._queues.items(), key=lambda item: item[1][0].enqueued):
            due = queue[0].enqueued + timeout
            if due <= now or sum(t.size for t in queue) >= self.parameters.max_batch_size:
                return (function, self._take(function, queue)), None
            wait = due - now if wait is None else min(wait, due - now)
        return None, wait

    def _take(self, function, queue):
        """Pops the oldest tasks that fit one batch (and share the first one's inner shapes)."""
        tasks, total = [], 0
        while queue and total + queue[0].size <= self.parameters.max_batch_size:
            if tasks and queue[0].inner_shapes != tasks[0].inner_shapes:
                break
            total += queue[0].size
            tasks.append(queue.pop(0))
        if not queue:
            del self._queues[function]
        return tasks

    def _execute(self, function, tasks):
        total = sum(task.size for task in tasks)
        padded = next((s for s in self.parameters.allowed_batch_sizes if s >= total), total)
        try:
            merged = {
                name: _pad(tf.concat([task.tensors[name] for task in tasks], axis=0), padded - total)
                for name in tasks[0].tensors
            }  # each (padded, ...)
            outputs = predict.execute(function, merged)
            for name, array in outputs.items():
                if np.ndim(array) == 0 or np.shape(array)[0] != padded:
                    raise predict.InvalidArgument(
                        f"Batched output tensor's 0th dimension does not equal the batch size: {name}"
                    )
            start = 0
            for task in tasks:
                task.outputs = {name: array[start : start + task.size] for name, array in outputs.items()}
                start += task.size
        except Exception as e:  # a refusal, or an unexpected error the request threads log (500)
            for task in tasks:
                task.error = e
        for task in tasks:
            task.done.set()


def _task_size(tensors):
    """The instances of a request: the 0th dimension every input shares.

    Raises:
        InvalidArgument: a scalar input, or inputs of different 0th dimensions (TF Serving's
            batching_session.cc ComputeInputSize messages).
    """
    sizes = set()
    for tensor in tensors.values():
        if tensor.shape.rank == 0:
            raise predict.InvalidArgument("Batching input tensors must have at least one dimension")
        sizes.add(tensor.shape[0])
    if len(sizes) > 1:
        raise predict.InvalidArgument(
            "Batching input tensors supplied in a given op invocation must have equal 0th-dimension size"
        )
    return sizes.pop()


def _pad(tensor, count):
    """`tensor` `(n, ...)` with `count` copies of its first row appended."""
    if count == 0:
        return tensor
    return tf.concat([tensor, tf.repeat(tensor[:1], count, axis=0)], axis=0)
