"""Which models `tfrnn serve` serves and which of their versions: from TF Serving's
`--model_config_file` (a ModelServerConfig text proto, as `tfrnn export --serving-config` writes)
or from an export root (every model folder, newest version only).

A model's version policy is TF Serving's `model_version_policy`
(tensorflow_serving/config/file_system_storage_path_source.proto): `latest { num_versions: N }`
(the default, N = 1), `all {}` or `specific { versions: ... }`; `version_labels` name versions.
"""

import dataclasses
from pathlib import Path

from tfrnn.errors import ConfigError
from tfrnn.serving import layout


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model to serve.

    Attributes:
        name: str. The model's name in requests.
        base_path: Path. Its folder of versions (BASE/<version>/saved_model.pb).
        policy: str. "latest", "all" or "specific".
        num_versions: int. How many of the newest versions "latest" serves.
        versions: frozenset of int. The versions "specific" serves.
        labels: dict of str -> int. Version labels.
    """

    name: str
    base_path: Path
    policy: str = "latest"
    num_versions: int = 1
    versions: frozenset = frozenset()
    labels: dict = dataclasses.field(default_factory=dict)

    def aspired(self, on_disk):
        """The versions this model serves out of those on disk (complete ones).

        Args:
            on_disk: iterable of int.

        Returns:
            sorted list of int, newest first.
        """
        newest_first = sorted(set(on_disk), reverse=True)
        if self.policy == "all":
            return newest_first
        if self.policy == "specific":
            return [v for v in newest_first if v in self.versions]
        return newest_first[: self.num_versions]


def entries_from_root(root):
    """Every model under an export root, with TF Serving's default policy (newest version).

    Args:
        root: str or Path. The export root (ROOT/NAME/<version>/saved_model.pb).

    Returns:
        list of ModelEntry, sorted by name.
    """
    root = Path(root)
    return [ModelEntry(name, root / name) for name in layout.model_names(root)]


def read_model_config(path):
    """The models of a ModelServerConfig text proto (TF Serving's --model_config_file).

    A relative `base_path` is taken relative to the file's folder. (TF Serving itself wants
    absolute base paths, or --model_config_list_root_dir.) A `base_path` that does not exist but
    whose last component is a folder next to the config file (a container path such as
    /models/sentiment in the models.config `tfrnn export --serving-config` writes) is read there,
    so the same file serves locally and in Docker.

    Args:
        path: str or Path. The config file.

    Returns:
        list of ModelEntry, in the file's order.

    Raises:
        ConfigError: the file cannot be read or parsed, lists a model twice, names an unknown
            platform, or lacks a name or base path.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the model config file ({e.__class__.__name__})") from None
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ConfigError(f"{path}: not a ModelServerConfig text proto: {e}") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise ConfigError(f"{path}: custom_model_config is not supported; use model_config_list")
    entries, seen = [], set()
    for model in config.model_config_list.config:
        if not model.name:
            raise ConfigError(f"{path}: a model has no name")
        if model.name in seen:
            # server_core.cc ValidateModelConfigList
            raise ConfigError(f"{path}: Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{path}: Model {model.name} requests unsupported platform {model.model_platform}")
        if not model.base_path:
            raise ConfigError(f"{path}: model {model.name} has no base_path")
        entries.append(_entry(model, _base_path(path.parent, model.base_path)))
    return entries


def _base_path(config_dir, base_path):
    """A base path as this machine sees it (see `read_model_config`)."""
    candidate = Path(base_path)
    if not candidate.is_absolute():
        return (config_dir / candidate).resolve()
    if not candidate.exists() and (config_dir / candidate.name).is_dir():
        return config_dir / candidate.name
    return candidate


def _entry(model, base_path):
    policy = model.model_version_policy
    labels = dict(model.version_labels)
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return ModelEntry(model.name, base_path, "all", labels=labels)
    if which == "specific":
        return ModelEntry(
            model.name, base_path, "specific", versions=frozenset(policy.specific.versions), labels=labels
        )
    # file_system_storage_path_source.cc: latest serves max(num_versions, 1) versions.
    return ModelEntry(model.name, base_path, "latest", num_versions=max(policy.latest.num_versions, 1), labels=labels)
