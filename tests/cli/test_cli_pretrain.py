"""`tfrnn pretrain` and `tfrnn train --init-from` through click: a pretrain run, a classifier on
it, and every bad input as one `Error:` line with exit status 2 and nothing written."""

import json

import pytest

from tests.cli.test_cli import assert_one_line_error, run
from tests.fixtures import TINY_LM


def test_pretrain_help_shows_examples():
    result = run("pretrain", "--help")
    assert result.exit_code == 0 and "tfrnn pretrain --data" in result.output and "--init-from" in result.output
    assert "--init-from" in run("train", "--help").output


def test_pretrain_then_train_init_from(tmp_path, tiny_lm_run):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("\n".join(["a warm funny film with a great cast"] * 120), encoding="utf-8")
    result = run(
        "pretrain", "--data", corpus, "--data", "embedded", "--output-dir", tmp_path, "--name", "lm",
        "data.lines=true", *TINY_LM, "data.limit=200", "train.epochs=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"metrics: {tmp_path / 'lm' / 'metrics.json'}" in result.output
    assert "held-out perplexity" in result.output
    assert json.loads((tmp_path / "lm" / "metrics.json").read_text())["perplexity"] > 1
    trained = run(
        "train", "--init-from", tiny_lm_run.run_dir, "--output-dir", tmp_path, "--name", "cls",
        "data.limit=300", "train.epochs=2", "train.verbose=0",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    predicted = run("predict", tmp_path / "cls", "A warm, funny film.")
    assert predicted.exit_code == 0 and predicted.output.strip()


@pytest.fixture
def files(tmp_path):
    (tmp_path / "labels.csv").write_text("label\npos\nneg\n", encoding="utf-8")
    (tmp_path / "blank.csv").write_text("text,label\n<br />,pos\n ,neg\n", encoding="utf-8")
    return tmp_path


BAD = {
    "label-only table": ("pretrain --data {tmp}/labels.csv", ["labels.csv:1", "no column 'text'"]),
    "only blank text": ("pretrain --data {tmp}/blank.csv", ["blank.csv", "blank after cleaning"]),
    "missing text source": ("pretrain --data {tmp}/nope.txt", ["nope.txt", "not found"]),
    "a kind without a language model": ("pretrain --model feedforward", ["'--model'", "feedforward"]),
    "gradual unfreezing of a language model": ("pretrain train.unfreeze=gradual", ["train.unfreeze"]),
    "init_from a classifier run": ("train --init-from {run}", ["a classifier run"]),
    "init_from a run of another kind": ("train --model bert --init-from {lm}", ["a model.kind=rnn language model"]),
    "encoder settings against init_from": ("train --init-from {lm} model.rnn.units=3", ["model.rnn.units", "decides"]),
    "init_from a missing run": ("train --init-from {tmp}/gone", ["init_from", "gone", "not found"]),
    "evaluate a language model": ("evaluate {lm}", ["a language model", "--init-from"]),
    "LoRA on an RNN without a pretrained encoder": ("train --peft lora", ["needs a pretrained encoder"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_with_status_2(case, files, tiny_run, tiny_lm_run):
    command, parts = BAD[case]
    out = files / "out"
    words = command.format(tmp=files, run=tiny_run.run_dir, lm=tiny_lm_run.run_dir).split()
    assert_one_line_error(
        run(*words, "--output-dir", out, "--name", "x") if words[0] != "evaluate" else run(*words), *parts
    )
    assert not out.exists()
