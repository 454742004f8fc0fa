"""The models `tfrnn serve` serves and the state of each version, as TF Serving's ServerCore
keeps them (tensorflow_serving/model_servers/server_core.cc, core/aspired_versions_manager.cc).

A poll thread lists each model's folder every `poll_seconds` (TF Serving's
--file_system_poll_wait_seconds). The versions the model's policy picks (`ModelEntry.aspired`:
the newest by default) are loaded in that thread: state START, then LOADING while
`tf.saved_model.load` runs and the version's `assets.extra/tf_serving_warmup_requests` are
replayed, then AVAILABLE. Requests only ever see AVAILABLE versions, so a version still loading, or
one whose load failed, is never served, and a load is never run by a request.

- A failed load ends in state END with the error in the version's status (`error_code`, e.g.
  DATA_LOSS for a corrupt saved_model.pb, and the message, with the server's paths replaced by
  the model's name). It is not retried on each request nor each poll: only once the version's
  files change (a half-copied version that is completed loads then).
- The previous version keeps serving until a version the policy prefers is AVAILABLE
  (TF Serving's availability-preserving policy), so a failed newest version never interrupts it.
- Versions that leave the policy, or whose folder is deleted, are unloaded: UNLOADING, then END.

Which folders are versions is `tfrnn.serving.layout`'s rule: a half-written version (no
saved_model.pb yet, or a staging dot-folder) is never seen.
"""

import dataclasses
import logging
import threading
from pathlib import Path

import tensorflow as tf
import tensorflow_text  # noqa: F401  registers TensorFlow Text's ops, which BERT exports use

from tfrnn.serving import layout, predict
from tfrnn.serving.model_config import entries_from_root, read_model_config
from tfrnn.serving.predict import FailedPrecondition, InvalidArgument, ServingError

log = logging.getLogger("tfrnn.serving")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # saved_model_warmup_util.cc: kMaxNumRecords


class NotFound(ServingError):
    """No such model, version or servable; the message is TF Serving's."""

    code = "NOT_FOUND"


class Unavailable(ServingError):
    """The repository is not serving (stopped)."""

    code = "UNAVAILABLE"


__all__ = [
    "AVAILABLE",
    "END",
    "LOADING",
    "START",
    "UNLOADING",
    "FailedPrecondition",
    "InvalidArgument",
    "ModelRepository",
    "NotFound",
    "Unavailable",
    "VersionStatus",
]


@dataclasses.dataclass(frozen=True)
class VersionStatus:
    """A version's state as TF Serving's GetModelStatus reports it (apis/get_model_status.proto).

    Attributes:
        version: int.
        state: str. START, LOADING, AVAILABLE, UNLOADING or END.
        error_code: str. "OK", or the gRPC code's name of a failed load ("DATA_LOSS", ...).
        error_message: str. "" or the failure's message (no server path).
    """

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class _Version:
    """A version's mutable record (guarded by the repository's lock)."""

    def __init__(self, path):
        self.path = path
        self.state = START
        self.error_code = "OK"
        self.error_message = ""
        self.loaded = None
        self.fingerprint = None  # the files' signature when a load failed

    def status(self, version):
        return VersionStatus(version, self.state, self.error_code, self.error_message)


class ModelRepository:
    """The SavedModels `tfrnn serve` serves, loaded in the background.

    Args:
        root: str or Path, or None. An export root: every model folder under it, its newest
            version (folders appearing later are picked up).
        model_config_file: str or Path, or None. A ModelServerConfig text proto instead of
            `root` (`tfrnn.serving.model_config.read_model_config`): names, base paths,
            version policies and labels.
        poll_seconds: float. Seconds between two listings of the models' folders.
        warmup: bool. Replay each version's warm-up records before it is AVAILABLE.
        loader: callable(path) -> loaded SavedModel; `tf.saved_model.load` by default.

    Raises:
        ValueError: neither or both of root and model_config_file given.
        tfrnn.errors.ConfigError: a bad config file.
    """

    def __init__(self, root=None, model_config_file=None, poll_seconds=1.0, warmup=True, loader=None):
        if (root is None) == (model_config_file is None):
            raise ValueError("give exactly one of root and model_config_file")
        self.root = Path(root) if root is not None else None
        self.model_config_file = model_config_file
        self.poll_seconds = poll_seconds
        self.warmup = warmup
        self._loader = loader or tf.saved_model.load
        self._entries = {} if root is not None else {e.name: e for e in read_model_config(model_config_file)}
        self._states = {}  # name -> {version: _Version}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()  # one poll round at a time
        self._stop = threading.Event()
        self._thread = None
        self._stopped = False
        self.on_state_change = None  # optional callable(name, VersionStatus), e.g. for metrics

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, wait=True):
        """Starts the poll thread.

        Args:
            wait: bool. Return only after the first round loaded (or failed) every version the
                policies pick, as TF Serving waits for its initial loads before it listens.
        """
        if self._thread is not None:
            return
        self._stopped = False
        if wait:
            self.poll()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll_loop, name="tfrnn-model-poll", daemon=True)
        self._thread.start()

    def stop(self):
        """Stops the poll thread (a load in progress finishes first) and unloads every version."""
        self._stop.set()
        self._stopped = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            for versions in self._states.values():
                for record in versions.values():
                    record.loaded = None
                    if record.state != END:
                        record.state = END

    def _poll_loop(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a bad round must not end polling
                log.exception("polling the model folders failed")

    # -- polling -------------------------------------------------------------------------------

    def entries(self):
        """The models served now: {name: ModelEntry}."""
        if self.root is not None:
            self._entries = {e.name: e for e in entries_from_root(self.root)} if self.root.is_dir() else {}
        return dict(self._entries)

    def poll(self):
        """One round: lists every model's versions, unloads what left, loads what the policies
        pick. Runs in the poll thread; tests call it to step the repository."""
        with self._poll_lock:
            entries = self.entries()
            for name in list(self._states):
                if name not in entries:
                    self._retire(name, set())
            for entry in entries.values():
                on_disk = set(layout.versions(entry.base_path))
                aspired = entry.aspired(on_disk)
                self._retire(entry.name, on_disk)
                for version in aspired:
                    if self._stop.is_set() and self._thread is not None:
                        return
                    self._maybe_load(entry, version)
                self._unload_superseded(entry.name, aspired)

    def _retire(self, name, on_disk):
        """Unloads the versions of `name` whose folder is gone (or complete no more)."""
        with self._lock:
            gone = [v for v, r in self._states.get(name, {}).items() if v not in on_disk and r.state != END]
        for version in gone:
            self._unload(name, version, "its folder was removed")

    def _unload_superseded(self, name, aspired):
        """Unloads loaded versions the policy no longer picks, once one it picks is AVAILABLE."""
        with self._lock:
            versions = self._states.get(name, {})
            if not any(versions[v].state == AVAILABLE for v in aspired if v in versions):
                return
            superseded = [v for v, r in versions.items() if v not in aspired and r.state == AVAILABLE]
        for version in superseded:
            self._unload(name, version, "the version policy no longer picks it")

    def _unload(self, name, version, why):
        with self._lock:
            record = self._states[name][version]
            was_loaded = record.state != END
            record.state = UNLOADING
        self._changed(name, version)
        with self._lock:
            record.loaded = None
            record.state = END
        if was_loaded:
            log.info("unloaded %s version %d: %s", name, version, why)
        self._changed(name, version)

    def _maybe_load(self, entry, version):
        path = entry.base_path / str(version)
        with self._lock:
            record = self._states.setdefault(entry.name, {}).get(version)
            if record is not None and record.state == AVAILABLE:
                return
            if record is not None and record.state == END and record.error_code != "OK":
                if record.fingerprint == _fingerprint(path):
                    return  # failed before, same files: not retried
            if record is not None and record.state in (START, LOADING, UNLOADING):
                return
            record = self._states[entry.name][version] = _Version(path)
        self._changed(entry.name, version)
        self._load(entry, version, record)

    def _load(self, entry, version, record):
        name, path = entry.name, record.path
        with self._lock:
            record.state = LOADING
        self._changed(name, version)
        log.info("loading %s version %d from %s", name, version, path)
        fingerprint = _fingerprint(path)
        try:
            loaded = self._loader(str(path))
            if self._loader is tf.saved_model.load:
                predict.read_signature_defs(loaded, path)
            if self.warmup:
                _replay_warmup(loaded, path / WARMUP_PATH)
        except Exception as e:  # any failure of a load is the version's status, never a crash
            code, message = _load_error(e, path)
            log.warning("loading %s version %d from %s failed: %s", name, version, path, e)
            with self._lock:
                record.state, record.error_code = END, code
                record.error_message = _strip_paths(message, entry.base_path, name)
                record.fingerprint = fingerprint
            self._changed(name, version)
            return
        if not (path / "saved_model.pb").is_file():  # deleted while it loaded
            log.info("%s version %d was removed while it loaded", name, version)
            with self._lock:
                record.state = END
            self._changed(name, version)
            return
        with self._lock:
            record.loaded, record.state = loaded, AVAILABLE
        log.info("%s version %d is AVAILABLE", name, version)
        self._changed(name, version)

    def _changed(self, name, version):
        if self.on_state_change is not None:
            with self._lock:
                status = self._states[name][version].status(version)
            self.on_state_change(name, status)

    # -- queries -------------------------------------------------------------------------------

    def models(self):
        """Sorted names of the models served (those of the config, or the root's folders now)."""
        return sorted(self.entries())

    def versions(self, name):
        """The complete versions of model `name` on disk, newest first, loaded or not (the policy
        picks among them); empty for a model that is not served.

        Args:
            name: str.

        Returns:
            list of int.
        """
        entry = self.entries().get(name)
        return [] if entry is None else layout.versions(entry.base_path)[::-1]

    def model_status(self, name, version=None):
        """TF Serving's GetModelStatus (model_servers/get_model_status_impl.cc).

        Args:
            name: str. The model's name.
            version: int or None. One version; None for every version known, newest first.

        Returns:
            list of VersionStatus.

        Raises:
            NotFound: "Could not find any versions of model NAME" or
                "Could not find version V of model NAME".
        """
        with self._lock:
            versions = self._states.get(name, {})
            if version is not None:
                if version not in versions:
                    raise NotFound(f"Could not find version {version} of model {name}")
                return [versions[version].status(version)]
            if not versions:
                raise NotFound(f"Could not find any versions of model {name}")
            return [versions[v].status(v) for v in sorted(versions, reverse=True)]

    def servable(self, name, version=None, label=None):
        """An AVAILABLE version to run a request on (TF Serving's ServerCore::GetServableHandle).

        Args:
            name: str. The model's name.
            version: int or None. A specific version.
            label: str or None. A version label of the model config (not with `version`).

        Returns:
            (int, loaded SavedModel).

        Raises:
            InvalidArgument: both version and label given, or an unknown label
                ("Unrecognized servable version label: LABEL", server_core.cc).
            NotFound: "Servable not found for request: Latest(NAME)" or
                "Servable not found for request: Specific(NAME, V)" (basic_manager.cc): no
                such model or version, or not AVAILABLE (still loading, failed, unloaded).
            Unavailable: the repository was stopped.
        """
        if version is not None and label is not None:
            # http_rest_api_util.cc FillModelSpecWithNameVersionAndLabel
            raise InvalidArgument(
                f"Both model version ({version}) and model version label ({label}) cannot be supplied."
            )
        if label is not None:
            entry = self._entries.get(name)
            if entry is None or label not in entry.labels:
                raise InvalidArgument(f"Unrecognized servable version label: {label}")
            version = entry.labels[label]
        with self._lock:
            if self._stopped:
                raise Unavailable("The model server is shutting down")
            versions = self._states.get(name, {})
            if version is None:
                available = [v for v, r in versions.items() if r.state == AVAILABLE]
                if not available:
                    raise NotFound(f"Servable not found for request: Latest({name})")
                version = max(available)
            elif version not in versions or versions[version].state != AVAILABLE:
                raise NotFound(f"Servable not found for request: Specific({name}, {version})")
            return version, versions[version].loaded

    def wait_until_available(self, name, version=None, timeout=60.0):
        """Waits until a version of `name` (or `version`) is AVAILABLE; for tests and tools.

        Returns:
            bool, whether it became AVAILABLE within `timeout` seconds.
        """
        deadline = threading.Event()
        waited = 0.0
        while waited < timeout:
            try:
                self.servable(name, version)
                return True
            except ServingError:
                deadline.wait(0.02)
                waited += 0.02
        return False


def _fingerprint(path):
    """What identifies a version's files: saved_model.pb and the variables index (size, mtime)."""
    signature = []
    for part in ("saved_model.pb", "variables/variables.index", "variables"):
        try:
            stat = (path / part).stat()
            signature.append((part, stat.st_size, stat.st_mtime_ns))
        except OSError:
            signature.append((part, None, None))
    return tuple(signature)


def _replay_warmup(loaded, path):
    """Runs the warm-up file's PredictRequests (as saved_model_warmup_util.cc), if there is one."""
    if not path.is_file():
        return
    from tfrnn.serving.tf_serving import read_warmup_requests

    requests = read_warmup_requests(path)
    if len(requests) > MAX_WARMUP_RECORDS:
        raise InvalidArgument(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
    for request in requests:
        function = predict.signature(loaded, request.model_spec.signature_name)
        predict.run(function, {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()})


def _load_error(error, path):
    """A load failure as TF Serving would report it: (gRPC code name, message)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, tf.errors.OpError):
        from tensorflow.core.lib.core import error_codes_pb2

        return error_codes_pb2.Code.Name(error.error_code), error.message.split("\n")[0]
    if isinstance(error, ServingError):
        return error.code, str(error)
    if isinstance(error, OSError) and "Cannot parse file" in message:
        # tensorflow/core/platform/env.cc ReadBinaryProto, what TF Serving's C++ loader reports
        return "DATA_LOSS", f"Can't parse {path / 'saved_model.pb'} as binary proto"
    if isinstance(error, FileNotFoundError):
        return "NOT_FOUND", message
    return "UNKNOWN", message


def _strip_paths(message, base_path, name):
    """`message` with the server's folders replaced by the model's name."""
    for folder in {str(base_path), str(Path(base_path).resolve())}:
        message = message.replace(folder, name)
    return message
