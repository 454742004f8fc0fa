"""`tfrnn tune` through click: a one-trial search writes its table and best config; bad input is
one `Error:` line with exit status 2 and nothing written."""

import pytest
from click.testing import CliRunner
from tfrnn_cli.main import cli

from tests.cli.test_cli import assert_one_line_error
from tests.test_tuning import SPACE, write_space
from tfrnn.config import load_config


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_tune_runs_a_search_and_says_where_the_best_config_is(tmp_path):
    space, tune_dir = write_space(tmp_path), tmp_path / "tune"
    result = run("tune", "-c", space, "--trials", "1", "--output-dir", tune_dir)
    assert result.exit_code == 0, result.output
    assert "trial 0 (1/1): train.learning_rate=" in result.output
    assert f"config: {tune_dir / 'best.yaml'}" in result.output.splitlines()[-1]
    assert (tune_dir / "results.md").is_file() and load_config(tune_dir / "best.yaml").model.kind == "feedforward"
    assert_one_line_error(run("tune", "-c", space, "--output-dir", tune_dir), "already exists", "--resume")


@pytest.mark.parametrize(
    "space, flags, message",
    [
        (SPACE, ["--algorithm", "grid"], "algorithm='grid': expected one of random, bayesian, hyperband"),
        (SPACE.replace("min: 4, max: 16", "min: 16, max: 4"), [], ":9: model.feedforward.hidden_units: empty range"),
        (SPACE, ["--resume"], "no search to resume"),
        (SPACE, ["--trials", "0"], "Invalid value for '--trials'"),
    ],
    ids=["algorithm", "empty-range", "nothing-to-resume", "no-trials"],
)
def test_bad_input_is_one_error_line(tmp_path, space, flags, message):
    result = run("tune", "-c", write_space(tmp_path, space), "--output-dir", tmp_path / "tune", *flags)
    assert_one_line_error(result, message)
    assert not (tmp_path / "tune").exists()


def test_tune_help_shows_examples():
    result = run("tune", "--help")
    assert result.exit_code == 0 and "tfrnn tune -c space.yaml --trials 20" in result.output
