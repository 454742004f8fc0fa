"""Weights & Biases tracking (`train.wandb=true`): fit's epochs logged through wandb's Keras
integration (`WandbMetricsLogger`), beside TensorBoard.

The W&B run is named after the tfrnn run, holds the run spec as its config and keeps its files in
RUN/wandb. It is offline (no account, no network; `wandb sync RUN/wandb/offline-run-*` uploads
it later) unless WANDB_MODE says otherwise or an API key is configured (WANDB_API_KEY, or a
netrc entry for the W&B host, as `wandb login` writes). The mode is set for the whole process
(`wandb.setup`): wandb 0.31's own usage telemetry, which reads the process-wide settings, would
otherwise reach for the network even when the run is offline. WANDB_PROJECT names the project
(default "tfrnn").
"""

import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

import keras

from tfrnn.config import as_dict
from tfrnn.errors import ConfigError

DEFAULT_PROJECT = "tfrnn"
LEGACY_HOST = "api.wandb.ai"  # what `wandb login` wrote before wandb 0.31's default host (which falls back to it)


def check_wandb(config):
    """Refuses `train.wandb=true` when wandb cannot be imported; call it before anything is written.

    Args:
        config: RunConfig or PretrainConfig.

    Raises:
        ConfigError: train.wandb is true and the wandb package is missing.
    """
    if not config.train.wandb:
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError(
            "train.wandb=true: needs the wandb package (pip install tfrnn[tracking])", "train.wandb"
        ) from None


def wandb_mode(default_base_url):
    """WANDB_MODE when set; else "online" when an API key is configured, "offline" otherwise (so a
    run never waits on a login prompt or the network).

    Args:
        default_base_url: str. wandb's server when WANDB_BASE_URL is not set.
    """
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if _api_key_configured(os.environ.get("WANDB_BASE_URL") or default_base_url) else "offline"


def _api_key_configured(base_url):
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        entries = netrc.netrc(os.environ.get("NETRC"))
    except (OSError, netrc.NetrcParseError):  # no netrc file, or one that cannot be read
        return False
    return any(entries.authenticators(host) for host in (urlsplit(base_url).hostname, LEGACY_HOST))


class FinishWandbRun(keras.callbacks.Callback):
    """Finishes the W&B run when fit ends (wandb finishes a run that an error left open when the
    process exits, or when the next run starts).

    Args:
        run: wandb Run. The run to finish.
    """

    def __init__(self, run):
        super().__init__()
        self.run = run

    def on_train_end(self, logs=None):
        self.run.finish()


def wandb_callbacks(spec, run_dir, log=print):
    """Starts a W&B run for a tfrnn run; returns fit's callbacks that log each epoch to it and
    finish it at the end (put them after the callbacks that add to the epoch's logs).

    Args:
        spec: RunConfig or PretrainConfig. The run spec (its run_name names the W&B run).
        run_dir: str or Path. The run directory; W&B writes under RUN/wandb.
        log: callable. Receives one line saying where the run is logged.

    Returns:
        list of keras.callbacks.Callback: a WandbMetricsLogger (per epoch), then a FinishWandbRun.
    """
    import wandb
    from wandb.integration.keras import WandbMetricsLogger

    mode = wandb_mode(wandb.Settings().base_url)
    wandb.setup(settings=wandb.Settings(mode=mode))  # process-wide, for wandb's own telemetry too
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", DEFAULT_PROJECT),
        name=spec.run_name,
        config=as_dict(spec),
        dir=str(run_dir),
        mode=mode,
        reinit="finish_previous",  # one run at a time: an earlier run left open (a failed fit) ends
    )
    if mode == "offline":
        log(f"W&B: offline run in {Path(run.dir).parent} (upload it with: wandb sync {Path(run.dir).parent})")
    elif mode != "disabled":
        log(f"W&B: {run.url}")
    return [WandbMetricsLogger(log_freq="epoch"), FinishWandbRun(run)]
