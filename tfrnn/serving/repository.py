"""The models and versions under an export root (TF Serving's layout ROOT/NAME/<version>/),
loaded lazily and cached.

Which folders are models and servable versions is `tfrnn.serving.layout`'s rule, so a
half-written version is never served. Listings are re-read from disk, so versions exported while
the server runs appear without a restart; the newest version is the default.
"""

import threading
import time
from pathlib import Path

import tensorflow as tf
import tensorflow_text  # noqa: F401  registers TensorFlow Text's ops, which BERT exports use

from tfrnn.errors import TfrnnError
from tfrnn.serving import layout


class NotFound(TfrnnError):
    """No such model or version; the message is TF Serving's."""


class ModelRepository:
    """The SavedModels under an export root.

    Args:
        root: str or Path. The export root; each sub-folder is a model.
        poll_seconds: float. How long a model's version listing is reused before it is re-read
            from disk; 0 re-reads it on each lookup.
    """

    def __init__(self, root, poll_seconds=0.0):
        self.root = Path(root)
        self.poll_seconds = poll_seconds
        self._listings = {}  # name -> (monotonic time read, versions newest first)
        self._loaded = {}  # (name, version) -> loaded SavedModel
        self._locks = {}  # (name, version) -> lock held while it loads
        self._locks_guard = threading.Lock()

    def models(self):
        """Sorted names of the models (folders of the root with a complete version)."""
        return layout.model_names(self.root)

    def versions(self, name):
        """The servable versions of model `name`, newest first (empty when there is none).

        Args:
            name: str. The model's name.

        Returns:
            list of int.
        """
        read_at, versions = self._listings.get(name, (None, None))
        if read_at is None or time.monotonic() - read_at >= self.poll_seconds:
            versions = layout.versions(self.root / name)[::-1] if layout.is_model_name(name) else []
            self._listings[name] = (time.monotonic(), versions)
            self._forget_removed(name, versions)
        return versions

    def _forget_removed(self, name, versions):
        """Drops the loaded models of versions of `name` no longer on disk (frees their memory)."""
        with self._locks_guard:
            for key in [k for k in self._loaded if k[0] == name and k[1] not in versions]:
                self._loaded.pop(key, None)
                self._locks.pop(key, None)

    def resolve(self, name, version=None):
        """The version a request means: `version` when it exists, else the newest.

        Args:
            name: str. The model's name.
            version: int or None. A specific version; None for the newest.

        Returns:
            int, the version.

        Raises:
            NotFound: no such model, or no such version of it.
        """
        versions = self.versions(name)
        if version is None:
            if not versions:
                raise NotFound(f"Servable not found for request: Latest({name})")
            return versions[0]
        if version not in versions:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return version

    def load(self, name, version=None):
        """The loaded SavedModel of a version, loading it on first use (once, even when
        concurrent requests ask for it together).

        Args:
            name: str. The model's name.
            version: int or None. A specific version; None for the newest.

        Returns:
            (int, loaded SavedModel): the resolved version and its object.

        Raises:
            NotFound: no such model, or no such version of it.
        """
        key = (name, self.resolve(name, version))
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._loaded:
                self._loaded[key] = tf.saved_model.load(str(self.root / name / str(key[1])))
        return key[1], self._loaded[key]
