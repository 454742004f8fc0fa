"""`tfrnn explain` (tfrnn.explain): integrated gradients exact on a linear model, a planted trigger
word found by both methods, the tokens the model saw (no padding, truncation flagged, BERT's
pieces merged), the completeness warning, the renderings and the command's input errors."""

import json
from html.parser import HTMLParser

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from tfrnn_cli.main import cli

from tests.cli.test_cli import assert_one_line_error
from tests.fixtures import tiny_lm_config
from tfrnn.config import save_config
from tfrnn.data.preprocessing import WordPreprocessor
from tfrnn.errors import ConfigError
from tfrnn.explain import explain_texts, merge_word_pieces, render_html_fragment, render_text, write_html_page
from tfrnn.models.base import keep_preprocessor

VOCABULARY = ["", "[UNK]", "good", "bad", "film", "plot"]


def linear_model(max_len=5):
    """Logits = Dense(mean of the token embeddings): linear in the embeddings."""
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embeddings = keras.layers.Embedding(len(VOCABULARY), 4, mask_zero=True, name="embedding")(token_ids)
    pooled = keras.layers.GlobalAveragePooling1D()(embeddings)  # masked mean `(batch, 4)`
    model = keras.Model(token_ids, keras.layers.Dense(2, name="logits")(pooled))
    keep_preprocessor(model, WordPreprocessor(VOCABULARY, max_len=max_len))
    return model


@pytest.mark.parametrize("baseline", ["pad", "zeros"])
def test_integrated_gradients_of_a_linear_logit_are_the_exact_contributions(baseline):
    model = linear_model()
    table = model.get_layer("embedding").embeddings.numpy()  # (vocab, 4)
    kernel, bias = model.get_layer("logits").get_weights()  # (4, 2), (2,)
    ids = [2, 4, 3, 2]  # good film bad good
    logits = table[ids].mean(axis=0) @ kernel + bias
    label = int(np.argmax(logits))
    e0 = table[0] if baseline == "pad" else np.zeros(4)
    exact = (table[ids] - e0) @ kernel[:, label] / len(ids)  # each token's share of the logit
    [explanation] = explain_texts(model, ["Good film, bad... GOOD"], ["neg", "pos"], baseline=baseline, target="logit")
    assert explanation.tokens == ["good", "film", "bad", "good"]
    assert explanation.label == ["neg", "pos"][label]
    np.testing.assert_allclose(explanation.attributions, exact, atol=1e-4)
    assert explanation.value == pytest.approx(logits[label], abs=1e-4)
    assert explanation.completeness_gap < 1e-4 and explanation.warning is None


def test_padding_is_never_shown_and_truncation_is_flagged():
    texts = ["good film", "good bad film plot good bad film", "bad film good plot good", "good unseen"]
    explanations = explain_texts(linear_model(max_len=5), texts)  # explained in one padded batch
    assert [e.tokens for e in explanations] == [
        ["good", "film"],
        ["good", "bad", "film", "plot", "good"],
        ["bad", "film", "good", "plot", "good"],
        ["good", "[UNK]"],
    ]
    assert [e.truncated for e in explanations] == [False, True, False, False]
    assert all(len(e.attributions) == len(e.tokens) for e in explanations)
    assert "[cut]" in render_text(explanations[1], color=False)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.rnn.cell=simple_rnn"],
        ["model.rnn.cell=feedback", "model.rnn.feedback_base=gru"],
        ["model.rnn.cell=lstm", "model.rnn.bidirectional=false", "model.rnn.pooling=concat"],
        ["model.kind=feedforward"],
    ],
)
def test_every_kind_of_classifier_is_explained_completely(overrides):
    """tfrnn's own classifiers (fresh weights: nearly linear, so 200 steps are complete)."""
    from tfrnn.config import load_config
    from tfrnn.models import build_classifier

    texts = ["a good film", "bad plot and a good cast", "film"]
    preprocessor = WordPreprocessor.adapt(texts, vocab_size=20, max_len=8)
    config = load_config(None, [*overrides, "data.max_len=8"])
    model = build_classifier(config.model, preprocessor, 2)
    for e in explain_texts(model, texts, steps=200):
        assert len(e.attributions) == len(e.tokens) and e.warning is None, e.as_dict()


# A tiny GRU that learns one rule: the label is 1 when the planted word "zap" is in the text.
FILLERS = [f"w{i}" for i in range(12)]


@pytest.fixture(scope="module")
def trigger_model():
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(320):
        words = list(rng.choice(FILLERS, size=rng.integers(3, 8)))
        if i % 2:
            words.insert(int(rng.integers(0, len(words) + 1)), "zap")
        texts.append(" ".join(words))
        labels.append(i % 2)
    preprocessor = WordPreprocessor.adapt(texts, vocab_size=20, max_len=10)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(preprocessor.vocabulary_size, 8, mask_zero=True, name="embedding")(token_ids)
    x = keras.layers.GRU(8)(x)
    model = keras.Model(token_ids, keras.layers.Dense(2, name="logits")(x))
    model.compile(
        keras.optimizers.Adam(0.03), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    ids = preprocessor(tf.constant(texts))
    history = model.fit(ids, np.array(labels), epochs=12, batch_size=32, verbose=0)
    assert history.history["acc"][-1] > 0.95
    keep_preprocessor(model, preprocessor)
    return model


TRIGGER_TEXTS = ["w1 w2 zap w3 w4", "zap w5 w6", "w7 w8 w9 w10 zap"]


@pytest.mark.parametrize("method", ["ig", "occlusion"])
def test_the_planted_trigger_word_gets_the_largest_attribution(trigger_model, method):
    for explanation in explain_texts(trigger_model, TRIGGER_TEXTS, ["other", "trigger"], method=method):
        assert explanation.label == "trigger"
        strongest = int(np.argmax(np.abs(explanation.attributions)))
        assert explanation.tokens[strongest] == "zap", (explanation.tokens, explanation.attributions)
        assert explanation.attributions[strongest] > 0
        if method == "occlusion":
            assert explanation.completeness_gap is None and explanation.steps is None
    assert "\x1b[32m\x1b[1mzap\x1b[0m" in render_text(explanation)  # strong and for the label: bold green


def test_enough_steps_are_complete_on_a_saturated_model(trigger_model):
    for explanation in explain_texts(trigger_model, TRIGGER_TEXTS, steps=300):
        assert explanation.probability > 0.99  # a sharp rise along the path: 50 steps are not enough
        assert explanation.completeness_gap < 0.05 and explanation.warning is None


def test_one_step_on_a_nonlinear_model_warns(trigger_model):
    [explanation] = explain_texts(trigger_model, TRIGGER_TEXTS[:1], steps=1)
    assert explanation.completeness_gap > 0.05
    assert "use more steps than 1" in explanation.warning
    assert "use more steps" in render_text(explanation, color=False)
    assert json.loads(json.dumps(explanation.as_dict()))["warning"] == explanation.warning


def test_merge_word_pieces():
    pieces = ["[CLS]", "un", "##believ", "##able", "film", "!", "##x", "[SEP]", "[PAD]"]
    assert merge_word_pieces(pieces) == [("unbelievable", [1, 2, 3]), ("film", [4]), ("!x", [5, 6])]
    assert merge_word_pieces(["[CLS]", "##s", "[SEP]"]) == [("s", [1])]


def test_bert_pieces_merged_into_words():
    from tfrnn.data.wordpiece import RESERVED, BertPreprocessor
    from tfrnn.models.bert.classifier import BertClassifier, random_backbone

    vocabulary = [*RESERVED, "film", "##s", "good", "bad", "a"]
    preprocessor = BertPreprocessor(vocabulary, max_len=8)
    model = BertClassifier(random_backbone(len(vocabulary), 1, 8, 1, 8), 2, preprocessor=preprocessor)
    short, cut = explain_texts(model, ["Good films", "a bad film a good film a film"], steps=64)
    assert short.tokens == ["good", "films"] and not short.truncated
    assert cut.tokens == ["a", "bad", "film", "a", "good", "film"] and cut.truncated  # [CLS] + 6 + [SEP]
    assert short.completeness_gap < 0.05  # [CLS] and [SEP] stay in the baseline: the words share it all
    [occluded] = explain_texts(model, ["Good films"], method="occlusion")
    assert occluded.tokens == ["good", "films"]


def test_bad_options_are_config_errors():
    model = linear_model()
    for options, message in [
        (dict(steps=0), "steps=0"),
        (dict(method="shap"), "method='shap'"),
        (dict(baseline="mean"), "baseline='mean'"),
        (dict(texts=["good", "  "]), "text 2 is empty"),
        (dict(texts=[]), "no texts"),
    ]:
        with pytest.raises(ConfigError, match=message):
            explain_texts(model, **{"texts": ["good"], **options})


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sections, self.words = [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.sections += tag == "section" and attrs.get("class") == "tfrnn-explanation"
        if "data-attribution" in attrs:
            self.words.append(float(attrs["data-attribution"]))


def test_html_fragment_and_page(tmp_path):
    explanations = explain_texts(linear_model(), ["good <b>film</b> & plot", "bad plot"])
    fragment = render_html_fragment(explanations[0])
    assert fragment.startswith('<section class="tfrnn-explanation"') and "&lt;" not in fragment  # HTML stripped
    write_html_page(tmp_path / "page.html", explanations, title="A <test>")
    page = _Page()
    page.feed((tmp_path / "page.html").read_text(encoding="utf-8"))
    assert page.sections == 2
    assert page.words == pytest.approx([a for e in explanations for a in e.attributions], rel=1e-5)
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in page.tags
    assert not any(attrs.get("src") or tag == "script" for tag, attrs in page.tags)  # nothing to fetch
    assert "A &lt;test&gt;" in (tmp_path / "page.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ CLI


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def test_cli_text_json_and_html(tiny_run, tmp_path):
    texts = ["A wonderful, moving film.", "Dull and far too long."]
    result = run("explain", tiny_run.run_dir, *texts, "--steps", "20")
    assert result.exit_code == 0, result.output
    assert "integrated gradients (20 steps, pad baseline)" in result.output and "wonderful[" in result.output
    (tmp_path / "texts.txt").write_text("Great cast.\n", encoding="utf-8")
    page = tmp_path / "explained.html"
    result = run("explain", tiny_run.run_dir, texts[0], "--text-file", tmp_path / "texts.txt", "--json", "--html", page)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["text"] for line in lines] == [texts[0], "Great cast."]
    assert lines[0]["tokens"] == ["a", "wonderful", "moving", "film"] and lines[0]["method"] == "ig"
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.sections == 2
    result = run("explain", tiny_run.run_dir, texts[1], "--method", "occlusion", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["method"] == "occlusion"


def test_cli_bad_input_is_one_error_line(tiny_run, tmp_path):
    (tmp_path / "texts.txt").write_text("fine\n\nalso fine\n", encoding="utf-8")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_bytes((tiny_run.run_dir / "config.yaml").read_bytes())
    language_model = tmp_path / "lm"
    language_model.mkdir()
    save_config(tiny_lm_config(tmp_path, "lm"), language_model / "config.yaml")
    run_dir = tiny_run.run_dir
    for args, parts in [
        ((run_dir,), ["TEXT", "--text-file"]),
        ((run_dir, "fine", " "), ["TEXT 2: empty text"]),
        ((run_dir, "--text-file", tmp_path / "texts.txt"), ["texts.txt:2: empty text"]),
        ((run_dir, "fine", "--steps", "0"), ["'--steps'", "0"]),
        ((run_dir, "fine", "--html", tmp_path / "nowhere" / "p.html"), ["--html", "no such folder"]),
        ((tmp_path / "norun", "fine"), ["norun", "run directory not found"]),
        ((unfinished, "fine"), ["model.keras: missing", "finished"]),
        ((language_model, "fine"), ["a language model"]),
    ]:
        assert_one_line_error(run("explain", *args), *parts)
