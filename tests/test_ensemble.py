"""export_ensemble and evaluate_ensemble on two tiny runs of different kinds (the shared RNN run
and a feedforward run whose labels are in the other order): the export's probabilities are the
weighted mean of its members' in a process that can import only TensorFlow; each member's
signature is the member's own probabilities; every bad input is refused before anything is
written; evaluate reports the ensemble beside its members; `tfrnn ensemble` and `tfrnn evaluate`."""

import json
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner
from tfrnn_cli.main import cli

from tests.fixtures import SERVING_TEXTS, copy_run, quiet, serve_in_fresh_process, tiny_config
from tfrnn import data
from tfrnn.ensemble import ENSEMBLE_FILE, evaluate_ensemble, export_ensemble
from tfrnn.errors import ConfigError
from tfrnn.runs import load_run
from tfrnn.training.inference import evaluation_data

WEIGHTS = [3.0, 1.0]  # normalised: 0.75, 0.25


@pytest.fixture(scope="module")
def feedforward_run(tmp_path_factory):
    """A tiny feedforward run with its labels in the other order: pos, neg."""
    from tfrnn.training.train import train

    overrides = (
        "model.kind=feedforward",
        "model.feedforward.hidden_units=8",
        "model.feedforward.embedding_dim=8",
        "data.labels=[pos,neg]",
        "train.tensorboard=false",
    )
    return train(tiny_config(tmp_path_factory.mktemp("runs"), "tiny-ff", *overrides), log=quiet)


@pytest.fixture(scope="module")
def members(tiny_run, feedforward_run):
    return [tiny_run.run_dir, feedforward_run.run_dir]


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory):
    """The version folder of the members' ensemble, weighted 3:1."""
    return export_ensemble(members, tmp_path_factory.mktemp("saved_models") / "ensemble", weights=WEIGHTS)


def in_order(run, texts):
    """The run's in-process probabilities for `texts`, columns in neg, pos order."""
    return run.probabilities(texts)[:, [run.label_names.index(name) for name in ("neg", "pos")]]


@pytest.fixture(scope="module")
def loaded_members(members):
    return [load_run(run_dir) for run_dir in members]


def test_ensemble_probabilities_are_the_weighted_mean_in_a_tensorflow_only_process(ensemble, tmp_path):
    served = serve_in_fresh_process(ensemble, SERVING_TEXTS, tmp_path)
    assert served["loaded"] == []  # neither keras nor tfrnn was needed
    assert served["inputs"] == {"text": ["string", [None]]}
    assert served["outputs"] == {
        "probabilities": ["float32", [None, 2]],
        "label_id": ["int32", [None]],
        "label": ["string", [None]],
    }
    signatures = tf.saved_model.load(str(ensemble)).signatures
    each = [signatures[name](text=tf.constant(SERVING_TEXTS))["probabilities"].numpy() for name in ("tiny", "tiny-ff")]
    probabilities = np.array(served["probabilities"])
    np.testing.assert_allclose(probabilities, 0.75 * each[0] + 0.25 * each[1], atol=1e-6, rtol=0)
    assert served["label"] == [["neg", "pos"][i] for i in probabilities.argmax(axis=1)]
    assert not np.allclose(each[0], each[1], atol=1e-3)  # two different members, or the test proves little


def test_member_signatures_are_each_members_own_probabilities(ensemble, loaded_members):
    signatures = tf.saved_model.load(str(ensemble)).signatures
    assert sorted(signatures) == ["serving_default", "tiny", "tiny-ff"]
    for run in loaded_members:
        outputs = signatures[run.paths.root.name](text=tf.constant(SERVING_TEXTS))
        np.testing.assert_allclose(outputs["probabilities"].numpy(), in_order(run, SERVING_TEXTS), atol=1e-5, rtol=0)
        assert [label.decode() for label in outputs["label"].numpy()] == [
            ["neg", "pos"][i] for i in outputs["label_id"].numpy()
        ]


def test_assets_describe_the_members(ensemble, members):
    extra = ensemble / "assets.extra"
    described = json.loads((extra / ENSEMBLE_FILE).read_text())
    assert described["labels"] == ["neg", "pos"]
    assert [(m["run"], m["signature"], m["kind"], m["weight"], m["labels"]) for m in described["members"]] == [
        (str(members[0]), "tiny", "rnn", 0.75, ["neg", "pos"]),
        (str(members[1]), "tiny-ff", "feedforward", 0.25, ["pos", "neg"]),
    ]
    assert (extra / "labels.txt").read_text() == "neg\npos\n"
    assert (extra / "tfrnn_config.yaml").read_text() == (members[0] / "config.yaml").read_text()
    assert ensemble.name == "1" and not [p for p in ensemble.parent.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def bad_runs(tiny_run, tmp_path_factory):
    """Copies of the tiny run: unfinished ones, one of other labels, and two that reuse a name."""
    folder = tmp_path_factory.mktemp("bad")
    runs = {}
    for name, remove in (("no-metrics", "metrics.json"), ("no-model", "model.keras")):
        runs[name] = copy_run(tiny_run.run_dir, folder / name)
        (runs[name] / remove).unlink()
    runs["labels"] = copy_run(tiny_run.run_dir, folder / "labels")
    spec = yaml.safe_load((runs["labels"] / "config.yaml").read_text())
    spec["data"]["labels"] = ["bad", "good"]
    (runs["labels"] / "config.yaml").write_text(yaml.safe_dump(spec))
    runs["same-name"] = copy_run(tiny_run.run_dir, folder / "elsewhere")  # elsewhere/tiny
    runs["serving_default"] = shutil.copytree(tiny_run.run_dir, folder / "serving_default")
    return runs


@pytest.mark.parametrize(
    "others, weights, message",
    [
        ([], None, "an ensemble needs at least 2 runs; got 1"),
        (["missing"], None, "missing: run directory not found"),
        (["no-metrics"], None, "{no-metrics}: unfinished (no metrics.json: still training, or killed)"),
        (["no-model"], None, "{no-model}: unfinished (no model.keras: still training, or killed)"),
        (["labels"], None, "has labels neg, pos; {labels} has labels bad, good: an ensemble's members must share"),
        (["no-metrics"], [1.0], "--weights: 1 weights for 2 runs; give one per run"),
        (["no-metrics"], [1.0, 0.0], "--weights: 0 is not positive"),
        (["no-metrics"], [1.0, -2.0], "--weights: -2 is not positive"),
        (["same-name"], None, "runs named tiny twice"),
        (["serving_default"], None, "{serving_default}: a run named serving_default, the ensemble's own signature"),
    ],
    ids=[
        "one-run",
        "missing",
        "no-metrics",
        "no-model",
        "labels",
        "weight-count",
        "zero-weight",
        "negative-weight",
        "same-name",
        "serving_default",
    ],
)
def test_bad_members_are_refused_before_anything_is_written(tiny_run, bad_runs, tmp_path, others, weights, message):
    run_dirs = [tiny_run.run_dir] + [bad_runs.get(name, tmp_path / name) for name in others]
    with pytest.raises(ConfigError) as caught:
        export_ensemble(run_dirs, tmp_path / "saved_models" / "ensemble", weights=weights)
    assert message.format(**bad_runs) in str(caught.value), str(caught.value)
    if others == ["labels"]:
        assert str(tiny_run.run_dir) in str(caught.value)
    assert not (tmp_path / "saved_models").exists()


def test_an_existing_version_is_refused_untouched(members, tmp_path):
    (tmp_path / "ensemble" / "1").mkdir(parents=True)
    with pytest.raises(ConfigError, match="version 1 exists already"):
        export_ensemble(members, tmp_path / "ensemble", version=1)
    assert [p.name for p in (tmp_path / "ensemble").iterdir()] == ["1"] and not any((tmp_path / "ensemble/1").iterdir())


def test_evaluate_reports_the_ensemble_beside_its_members(ensemble, loaded_members):
    result = evaluate_ensemble(ensemble.parent)  # the model folder: its newest version
    written = ensemble.parent / "evaluations" / "embedded-v1.json"
    assert result["written_to"] == str(written)  # beside the versions, not in one
    assert json.loads(written.read_text()) == {k: v for k, v in result.items() if k != "written_to"}
    examples = data.load_examples(evaluation_data(ensemble / "assets.extra" / "tfrnn_config.yaml", []), "test")
    each = [in_order(run, examples.texts) for run in loaded_members]
    expected = {
        "ensemble": 0.75 * each[0] + 0.25 * each[1],
        **{run.paths.root.name: p for run, p in zip(loaded_members, each)},
    }
    reported = {"ensemble": result["ensemble"], **result["members"]}
    assert list(reported) == ["ensemble", "tiny", "tiny-ff"]
    for name, probabilities in expected.items():
        assert reported[name]["accuracy"] == np.mean(probabilities.argmax(axis=1) == examples.labels), name
        assert reported[name]["count"] == len(examples.labels) == 400
    assert [result["members"][name]["weight"] for name in ("tiny", "tiny-ff")] == [0.75, 0.25]


def test_evaluate_refuses_to_write_into_the_version_folder(ensemble):
    with pytest.raises(ConfigError, match="which TF Serving watches"):
        evaluate_ensemble(ensemble, to=ensemble / "assets.extra" / "evaluation.json")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_ensemble_then_evaluate(members, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("ensemble", *members, "--weights", "1,1")
    assert result.exit_code == 0, result.output
    target = tmp_path / "saved_models" / "ensemble-tiny" / "1"  # the default --to
    assert f"exported {target.relative_to(tmp_path)}" in result.output
    assert [m["weight"] for m in json.loads((target / "assets.extra" / ENSEMBLE_FILE).read_text())["members"]] == [
        0.5,
        0.5,
    ]
    result = run("evaluate", target, "--to", tmp_path / "evaluation.json")
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "evaluation.json").read_text())
    lines = result.output.splitlines()
    assert lines[0].split() == ["signature", "weight", "accuracy", "macro", "F1"]
    assert lines[1].split()[:3] == ["ensemble", "(weighted", "mean)"]
    assert lines[1].split()[-2] == f"{written['ensemble']['accuracy']:.4f}"
    assert [line.split()[:2] for line in lines[2:4]] == [["tiny", "0.500"], ["tiny-ff", "0.500"]]
    assert f"written to {tmp_path / 'evaluation.json'}" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--weights", "1,x"], "--weights 1,x: expected numbers separated by commas"),
        (["--weights", "1"], "--weights: 1 weights for 2 runs"),
    ],
    ids=["not-a-number", "weight-count"],
)
def test_cli_ensemble_bad_input_is_one_error_line(members, tmp_path, args, message):
    result = run("ensemble", *members, "--to", tmp_path / "ensemble", *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output and not (tmp_path / "ensemble").exists()


def test_another_backend_exports_under_tensorflow_after_the_checks(members, tmp_path, monkeypatch):
    """Under JAX or PyTorch the export runs in a TensorFlow subprocess (`tfrnn.export.run_under_tensorflow`,
    which `tfrnn export` shares); the members are checked here first, and the weights go normalised."""
    calls = []
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr("tfrnn.ensemble.run_under_tensorflow", lambda module, **kw: calls.append((module, kw)))
    with pytest.raises(ConfigError, match="at least 2 runs"):
        export_ensemble(members[:1], tmp_path / "ensemble")
    export_ensemble(members, tmp_path / "ensemble", weights=[1, 3], version=4)
    assert calls == [
        (
            "tfrnn.ensemble",
            {
                "run_dirs": list(map(str, members)),
                "model_root": str(tmp_path / "ensemble"),
                "weights": [0.25, 0.75],
                "version": 4,
            },
        )
    ]
