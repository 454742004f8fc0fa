"""`tfrnn train` killed with SIGKILL in the middle of epoch 2 (no handler runs: a power cut, the
OOM killer), then `tfrnn train --resume RUN` in a new process: the run ends with the metrics of
an uninterrupted run of the same seed. Equal with `train.deterministic=true`; within 0.5 point
of accuracy without. What makes it so: BackupAndRestore (weights, optimizer, epoch) and
tfrnn.training.callbacks (early stopping's state, the dropout seeds, the data order)."""

import json
import os
import shutil
import signal
import subprocess

import pytest

from tests.fixtures import TINY

TFRNN = shutil.which("tfrnn")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}  # "Epoch 2/3" arrives as it is printed
ARGS = (
    *[item for item in TINY if not item.startswith(("train.epochs=", "train.verbose=", "train.tensorboard="))],
    "train.epochs=3",
    "train.verbose=2",  # a line per epoch: "Epoch 2/3" as epoch 2 starts
    "train.tensorboard=false",
)


def tfrnn(*args):
    assert TFRNN, "the tfrnn command is not installed: pip install -e ."
    result = subprocess.run([TFRNN, *map(str, args)], capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, f"tfrnn {' '.join(map(str, args))}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def killed_in_epoch_2(*args):
    """Starts `tfrnn train ARGS` and SIGKILLs it as soon as it prints "Epoch 2/"."""
    process = subprocess.Popen(
        [TFRNN, "train", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV
    )
    try:
        for line in process.stdout:
            if line.startswith("Epoch 2/"):
                process.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail("the run ended without starting epoch 2")
    finally:
        process.kill()
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def metrics(run_dir):
    values = json.loads((run_dir / "metrics.json").read_text())
    return {key: value for key, value in values.items() if "seconds" not in key}  # timings differ


@pytest.mark.parametrize("deterministic", [True, False])
def test_sigkill_mid_epoch_then_resume_ends_as_the_uninterrupted_run(tmp_path, deterministic):
    args = [*ARGS, f"train.deterministic={str(deterministic).lower()}", "--output-dir", tmp_path]
    tfrnn("train", *args, "--name", "whole")

    killed_in_epoch_2(*args, "--name", "killed")
    run_dir = tmp_path / "killed"
    assert (run_dir / "history.csv").read_text().splitlines()[1:] == [
        (tmp_path / "whole" / "history.csv").read_text().splitlines()[1]
    ]  # epoch 1 logged, killed before the end of epoch 2
    assert (run_dir / "backup").is_dir() and not (run_dir / "metrics.json").exists()

    resumed = tfrnn("train", "--resume", run_dir)
    assert "Epoch 1/3" not in resumed.stdout and "Epoch 2/3" in resumed.stdout  # from the backup of epoch 1
    assert not (run_dir / "backup").exists()
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary files left

    whole, after_kill = metrics(tmp_path / "whole"), metrics(run_dir)
    assert after_kill["epochs_run"] == whole["epochs_run"] == 3
    if deterministic:
        assert after_kill == whole
        assert (run_dir / "history.csv").read_text() == (tmp_path / "whole" / "history.csv").read_text()
    else:
        for split in ("validation", "test"):
            assert after_kill[split]["accuracy"] == pytest.approx(whole[split]["accuracy"], abs=0.005)
