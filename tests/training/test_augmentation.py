"""A run's augmentation (tfrnn.training.augmentation): the unit, neighbours from another run's
embedding (a train run, a pretrain run), the log line, and the errors raised before anything is written."""

import keras
import numpy as np
import pytest

from tests.fixtures import copy_run, tiny_config
from tfrnn.config import load_config, save_config
from tfrnn.data import Examples
from tfrnn.errors import ConfigError
from tfrnn.training.augmentation import augment_training_examples, augment_unit, check_augment, load_neighbours

KEY = "data.augment.neighbours_from"
TEXTS = ["a great film with a good cast", "the worst movie , dull and long", "fine"]


def _examples():
    return Examples(list(TEXTS), [1, 0, 1], ["neg", "pos"], "test")


def _spec(tmp_path, *overrides):
    return tiny_config(tmp_path, "augmented", *overrides)


@pytest.mark.parametrize(
    "overrides, unit",
    [
        ((), "word"),
        (("model.rnn.tokenizer=char",), "char"),
        (("model.kind=feedforward", "model.feedforward.tokenizer=char"), "char"),
        (("model.kind=bert",), "word"),
        (("model.rnn.tokenizer=char", "data.augment.unit=word"), "word"),
    ],
)
def test_unit_auto_follows_the_tokenizer(tmp_path, overrides, unit):
    assert augment_unit(_spec(tmp_path, "data.augment.swap=0.1", *overrides)) == unit


def test_off_returns_the_examples_and_logs_nothing(tmp_path):
    examples, lines = _examples(), []
    assert augment_training_examples(examples, _spec(tmp_path), lines.append) is examples
    assert lines == []


def test_deletion_needs_no_neighbours_and_logs_what_it_did(tmp_path):
    spec = _spec(tmp_path, "data.augment.deletion=0.2", "data.augment.swap=0.1", "data.augment.copies=2")
    assert check_augment(spec) is None
    lines = []
    result = augment_training_examples(_examples(), spec, lines.append)
    assert len(result) == 9 and result.texts[::3] == TEXTS
    assert lines == ["augmentation: 3 -> 9 training examples (swap 0.1, deletion 0.2; words, 2 copies each)"]
    assert not (tmp_path / "augmented").exists()


def test_copies_are_made_from_the_texts_without_html(tmp_path):
    examples = Examples(["a <br /><br /> b"], [0], ["neg", "pos"], "test")
    result = augment_training_examples(examples, _spec(tmp_path, "data.augment.swap=0.5"), lambda line: None)
    assert result.texts[0] == "a <br /><br /> b" and result.texts[1] == "b a"


def _with_known_neighbours(run_dir, tmp_path):
    """A copy of the tiny run whose embedding makes "great" the nearest word to "good" and "bad"
    the nearest to "dull"; returns (run dir, vocabulary)."""
    copy = copy_run(run_dir, tmp_path)
    model = keras.saving.load_model(copy / "model.keras")
    vocabulary = [str(token) for token in model.preprocessor.get_vocabulary()]
    layer = model.get_layer("embedding")
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=layer.embeddings.shape).astype(np.float32)  # (vocab, dim)
    embedding[vocabulary.index("great")] = 2 * embedding[vocabulary.index("good")] + 0.01
    embedding[vocabulary.index("bad")] = 3 * embedding[vocabulary.index("dull")] + 0.01
    layer.embeddings.assign(embedding)
    model.save(copy / "model.keras")
    return copy, vocabulary


def test_neighbours_from_a_train_run(tiny_run, tmp_path):
    run_dir, vocabulary = _with_known_neighbours(tiny_run.run_dir, tmp_path)
    spec = _spec(tmp_path, "data.augment.synonym=1.0", f"{KEY}={run_dir}", "data.augment.neighbours=1")
    neighbours = load_neighbours(spec)
    assert neighbours.vocabulary == vocabulary
    assert neighbours.of("Good!") == ("great",) and neighbours.of("dull") == ("bad",)
    lines = []
    result = augment_training_examples(_examples(), spec, lines.append)
    original, copy = TEXTS[0].split(), result.texts[1].split()
    assert len(copy) == len(original) and copy[5] == "great"  # every word with a neighbour is replaced (rate 1)
    assert all(new in neighbours.of(old) for old, new in zip(original, copy) if new != old)
    assert lines[0].endswith(f"(synonym 1; words, 1 copy each; neighbours from {run_dir})")


def test_neighbours_from_a_pretrain_run(tiny_lm_run, tmp_path):
    spec = _spec(tmp_path, "data.augment.insertion=0.5", f"{KEY}={tiny_lm_run.run_dir}", "data.augment.neighbours=3")
    neighbours = load_neighbours(spec)
    model = keras.saving.load_model(tiny_lm_run.run_dir / "model.keras", compile=False)
    embedding = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
    vocabulary = [str(token) for token in model.preprocessor.get_vocabulary()]
    word = vocabulary[5]
    unit = embedding / np.linalg.norm(embedding, axis=1, keepdims=True)
    similarity = unit @ unit[5]
    similarity[[0, 1, 5]] = -np.inf
    assert neighbours.of(word) == tuple(vocabulary[i] for i in np.argsort(-similarity)[:3])
    result = augment_training_examples(_examples(), spec, lambda line: None)
    assert len(result) == 6 and result.texts[::2] == TEXTS


def _bert_run(tmp_path):
    folder = tmp_path / "bert-run"
    folder.mkdir()
    save_config(load_config(None, ["model.kind=bert"]), folder / "config.yaml")
    (folder / "metrics.json").write_text("{}")
    return folder


def test_errors_name_neighbours_from_and_come_before_anything_is_written(tiny_run, tmp_path):
    unfinished = copy_run(tiny_run.run_dir, tmp_path)
    (unfinished / "metrics.json").unlink()
    cases = [
        ((f"{KEY}={tmp_path / 'nowhere'}",), "run directory not found"),
        ((f"{KEY}={_bert_run(tmp_path)}",), 'model.kind=bert run has no word embedding \\(a layer "embedding"\\)'),
        ((f"{KEY}={tiny_run.run_dir}", "data.augment.unit=char"), "embedding is of word tokens"),
        ((f"{KEY}={tiny_run.run_dir}", "model.rnn.tokenizer=char"), "augmentation alters chars"),
        ((f"{KEY}={unfinished}",), "unfinished; finish it with tfrnn train --resume"),
    ]
    for overrides, message in cases:
        spec = _spec(tmp_path, "data.augment.synonym=0.1", *overrides)
        with pytest.raises(ConfigError, match=f"^{KEY}.*{message}") as raised:
            check_augment(spec)
        assert raised.value.key == KEY
        with pytest.raises(ConfigError, match=message):
            augment_training_examples(_examples(), spec, lambda line: None)
    assert not (tmp_path / "augmented").exists()


def test_a_run_trains_on_the_copies_and_evaluates_on_the_originals(tiny_run, tmp_path):
    """`tfrnn train` with augmentation: the training split grows by the copies, validation does
    not, the vocabulary is learned from the originals and the run can resume from elsewhere."""
    from tests.fixtures import quiet
    from tfrnn.runs import load_run
    from tfrnn.training.train import train

    plain = load_run(tiny_run.run_dir)
    overrides = ["data.augment.synonym=0.2", "data.augment.swap=0.1", "data.augment.copies=2"]
    overrides += [f"data.augment.neighbours_from={tiny_run.run_dir}", "train.epochs=1"]
    result = train(tiny_config(tmp_path, "augmented", *overrides), log=quiet)
    metrics = result.metrics
    assert metrics["augmented_examples"] == 3 * metrics["train_examples"] == 3 * tiny_run.metrics["train_examples"]
    assert metrics["validation"]["count"] == tiny_run.metrics["validation"]["count"]
    assert (result.run_dir / "vocabulary.txt").read_text() == plain.paths.vocabulary.read_text()
    spec = load_run(result.run_dir).spec
    assert spec.data.augment.neighbours_from == str(tiny_run.run_dir.resolve())
