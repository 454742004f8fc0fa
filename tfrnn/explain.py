"""Why a classifier predicts what it does: one attribution per token, for any tfrnn classifier.

Two methods, both on the tokens the model saw (after cleaning and truncation; a BERT's word
pieces merged back into words, [CLS] and [SEP] left out):

- Integrated gradients (Sundararajan et al. 2017), on the output of the token embedding layer
  (`tfrnn.training.adversarial.embedding_layer`: RNN, feedback, feed-forward, BERT, PEFT runs).
  The embeddings e go along the straight path e0 + alpha (e - e0) from a baseline e0 (the
  padding token's embedding at every position, or zeros), alpha at the midpoints of `steps`
  equal intervals; a token's attribution is the sum over its embedding dimensions of
  (e - e0) * the mean gradient of the target (the predicted label's probability, or logit).
  A BERT's [CLS] and [SEP] stay as they are in the baseline, so the words share all of
  f(x) - f(baseline). Completeness: the attributions sum to f(x) - f(baseline) as steps grow; the
  gap is reported with each explanation, and a warning asks for more steps above 5%.
- Occlusion (leave one word out): a word's attribution is the target's drop when the word is
  removed from the model's input.

The path's points of several texts run through the model together, in batches of at most
`tokens_per_batch` tokens: 50 steps of one text cost about one forward and backward pass of a
batch of 50. Explanations render for a terminal (`render_text`) and as HTML (`render_html_fragment`
for one, `write_html_page` for a self-contained page of several).
"""

import dataclasses
import html

import click
import keras
import numpy as np
import tensorflow as tf

from tfrnn import choices
from tfrnn.data.preprocessing import OOV_ID
from tfrnn.errors import ConfigError
from tfrnn.files import atomic_write_text
from tfrnn.training.adversarial import embedding_layer, shifted_output

TARGETS = ("probability", "logit")

# Completeness: the largest relative gap |sum(attributions) - (f(x) - f(baseline))| / |f(x) - f(baseline)|
# without a warning, and the smallest denominator (so that a tiny f(x) - f(baseline) warns only when
# the attributions are off in absolute terms too).
COMPLETENESS_TOLERANCE = 0.05
COMPLETENESS_FLOOR = 0.01

# BERT's word pieces left out of the words shown (they stay in the model's input).
SPECIAL_PIECES = ("[CLS]", "[SEP]", "[PAD]")


@dataclasses.dataclass(frozen=True)
class Explanation:
    """The attributions of one text's prediction.

    Args:
        text: str. The raw text.
        label: str. The predicted label.
        probability: float. Its probability.
        tokens: list of str. The words the model saw (vocabulary strings, out-of-vocabulary ones
            as the vocabulary's OOV token), in order.
        attributions: list of float. One per token: its share of the target (positive: for the
            predicted label).
        method: str. "ig" or "occlusion".
        target: str. What is explained: the predicted label's "probability" or "logit".
        value: float. The target at the text, f(x).
        attribution_sum: float. The sum of the attributions.
        truncated: bool. The text was cut at the model's max_len; explained up to the cut.
        separator: str. What goes between tokens when shown ("" for characters).
        steps: int or None. Integrated gradients' steps.
        baseline: str or None. Integrated gradients' baseline ("pad" or "zeros").
        baseline_value: float or None. The target at the baseline, f(baseline).
        completeness_gap: float or None. |attribution_sum - (value - baseline_value)| relative to
            |value - baseline_value| (at least COMPLETENESS_FLOOR).
    """

    text: str
    label: str
    probability: float
    tokens: list
    attributions: list
    method: str
    target: str
    value: float
    attribution_sum: float
    truncated: bool
    separator: str = " "
    steps: int | None = None
    baseline: str | None = None
    baseline_value: float | None = None
    completeness_gap: float | None = None

    @property
    def warning(self):
        """A line saying the attributions are off (completeness gap above 5%), or None."""
        if self.completeness_gap is None or self.completeness_gap <= COMPLETENESS_TOLERANCE:
            return None
        return (
            f"attributions sum to {self.attribution_sum:.4f}, f(x) - f(baseline) is "
            f"{self.value - self.baseline_value:.4f} ({self.completeness_gap:.0%} off): use more steps "
            f"than {self.steps}"
        )

    def as_dict(self):
        """The explanation as JSON-able values, its warning included."""
        return {**dataclasses.asdict(self), "warning": self.warning}


def explain_texts(
    model,
    texts,
    label_names=None,
    method="ig",
    steps=50,
    baseline="pad",
    target="probability",
    tokens_per_batch=16384,
):
    """Explains a classifier's predictions for raw texts.

    Args:
        model: keras.Model. A tfrnn classifier (or any model with a `preprocessor` and a token
            embedding layer that `embedding_layer` finds) giving logits `(batch, classes)`.
        texts: list of str. Raw texts, none blank.
        label_names: list of str or None. Label names by index (default "0", "1", ...).
        method: str. "ig" (integrated gradients) or "occlusion".
        steps: int. Integrated gradients' steps (>= 1).
        baseline: str. Integrated gradients' baseline: "pad" (the padding token's embedding) or "zeros".
        target: str. The predicted label's "probability" or "logit".
        tokens_per_batch: int. Most tokens (rows x time) in one batch through the model.

    Returns:
        list of Explanation, in the order of `texts`.

    Raises:
        ConfigError: an unknown method, baseline or target, steps < 1, a blank text, or
            integrated gradients on a backend other than TensorFlow or JAX.
    """
    _check_options(texts, method, steps, baseline, target)
    preprocessor = model.preprocessor
    inputs, truncated = _encode(preprocessor, texts)
    words = [_words(preprocessor, _token_ids(row)) for row in inputs]
    batches = _Batches(model, preprocessor.padding_values, tokens_per_batch)
    logits = batches.logits(inputs)  # (n, classes)
    probabilities = _softmax(logits)
    labels = np.argmax(logits, axis=-1)
    values = (probabilities if target == "probability" else logits)[np.arange(len(texts)), labels]
    names = list(label_names) if label_names is not None else [str(i) for i in range(logits.shape[-1])]
    explanations = []
    if method == "ig":
        attributions, baseline_values = _integrated_gradients(
            batches, inputs, words, labels, steps, baseline, target, preprocessor.padding_values
        )
    else:
        attributions = _occlusion(batches, inputs, words, labels, values, target)
        baseline_values = [None] * len(texts)
    for i, text in enumerate(texts):
        total = float(np.sum(attributions[i]))
        gap = None
        if baseline_values[i] is not None:
            difference = float(values[i]) - baseline_values[i]
            gap = abs(total - difference) / max(abs(difference), COMPLETENESS_FLOOR)
        explanations.append(
            Explanation(
                text=text,
                label=names[labels[i]],
                probability=float(probabilities[i, labels[i]]),
                tokens=[word for word, _ in words[i]],
                attributions=[float(a) for a in attributions[i]],
                method=method,
                target=target,
                value=float(values[i]),
                attribution_sum=total,
                truncated=bool(truncated[i]),
                separator="" if getattr(preprocessor, "tokenizer", None) == "char" else " ",
                steps=steps if method == "ig" else None,
                baseline=baseline if method == "ig" else None,
                baseline_value=baseline_values[i],
                completeness_gap=gap,
            )
        )
    return explanations


def _check_options(texts, method, steps, baseline, target):
    for name, value, allowed in (
        ("method", method, choices.EXPLAIN_METHODS),
        ("baseline", baseline, choices.EXPLAIN_BASELINES),
        ("target", target, TARGETS),
    ):
        if value not in allowed:
            raise ConfigError(f"{name}={value!r}: expected one of {', '.join(allowed)}", name)
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps={steps!r}: must be a positive integer", "steps")
    if not texts:
        raise ConfigError("no texts to explain")
    for i, text in enumerate(texts, 1):
        if not text.strip():
            raise ConfigError(f"text {i} is empty")
    if method == "ig" and keras.backend.backend() not in ("tensorflow", "jax"):
        raise ConfigError(
            f"integrated gradients need KERAS_BACKEND=tensorflow or jax (this is {keras.backend.backend()}); "
            "occlusion runs on any backend"
        )


def merge_word_pieces(pieces):
    """A BERT's WordPiece tokens as words: a piece starting with "##" joins the word before it;
    [CLS], [SEP] and [PAD] are left out.

    Args:
        pieces: list of str. WordPiece tokens, in order.

    Returns:
        list of (word, positions): the word and the indices of its pieces in `pieces`.
    """
    words = []
    for position, piece in enumerate(pieces):
        if piece in SPECIAL_PIECES:
            continue
        if piece.startswith("##") and words and words[-1][1][-1] == position - 1:
            word, positions = words[-1]
            words[-1] = (word + piece[2:], [*positions, position])
        else:
            words.append((piece.removeprefix("##") or piece, [position]))
    return words


def _token_ids(features):
    return features["token_ids"] if isinstance(features, dict) else features


def _map(function, *structures):
    """`function` on the arrays of model inputs (arrays, or dicts of them: BERT's, whose key order
    the model's inputs keep), element by element."""
    if isinstance(structures[0], dict):
        return {key: function(*(s[key] for s in structures)) for key in structures[0]}
    return function(*structures)


def _encode(preprocessor, texts):
    """Each text's model inputs, unpadded (`(time,)` each), and whether it was cut at max_len."""
    features = _map(np.asarray, preprocessor(tf.constant(texts, tf.string)))  # (n, time) each
    if isinstance(features, dict):  # BERT: its padding mask marks the tokens
        lengths = features["padding_mask"].sum(axis=1)
    else:
        lengths = (features != preprocessor.padding_values).sum(axis=1)
    inputs = [_map(lambda value, i=i, n=n: value[i, :n], features) for i, n in enumerate(lengths)]
    full = lengths == preprocessor.max_len
    truncated = np.zeros(len(texts), bool)
    if full.any():  # those texts again, preprocessed without the cut
        longer = [text for text, cut in zip(texts, full) if cut]
        config = {**preprocessor.get_config(), "max_len": max(map(len, longer)) + 3}  # a token has >= 1 character
        uncut = type(preprocessor).from_config(config)(tf.constant(longer, tf.string))
        uncut_lengths = (np.asarray(_token_ids(uncut)) != _token_ids(preprocessor.padding_values)).sum(axis=1)
        truncated[full] = uncut_lengths > preprocessor.max_len
    return inputs, truncated


def _words(preprocessor, ids):
    """The words of one text's token ids: (word, positions) for each."""
    vocabulary = preprocessor.get_vocabulary()
    pieces = [str(vocabulary[i]) for i in ids]
    if isinstance(preprocessor.padding_values, dict):  # BERT
        return merge_word_pieces(pieces)
    return [(piece, [position]) for position, piece in enumerate(pieces)]


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class _Batches:
    """Runs rows of model inputs (one text each, of any length) through the model in padded
    batches of at most `tokens_per_batch` tokens (at least one row).

    Args:
        model: keras.Model. The classifier.
        padding_values: int or dict. What pads each input.
        tokens_per_batch: int. Most rows x time in a batch.
    """

    def __init__(self, model, padding_values, tokens_per_batch):
        self.model = model
        self.padding_values = padding_values
        self.tokens_per_batch = tokens_per_batch
        self.layer = embedding_layer(model)

    def _chunks(self, rows):
        """Index ranges of `rows` to batch together."""
        start, longest = 0, 0
        for end, row in enumerate(rows):
            time = len(_token_ids(row))
            if end > start and (end - start + 1) * max(longest, time) > self.tokens_per_batch:
                yield start, end
                start, longest = end, 0
            longest = max(longest, time)
        if rows:
            yield start, len(rows)

    def _padded(self, rows):
        """Rows stacked, right-padded to the longest: `(rows, time)` each."""
        time = max(len(_token_ids(row)) for row in rows)

        def stack(pad, *values):
            return np.stack([np.pad(v, (0, time - len(v)), constant_values=pad) for v in values]).astype(np.int32)

        return _map(stack, self.padding_values, *rows)

    def logits(self, rows):
        """The logits of each row: np.ndarray `(rows, classes)`, float32."""
        out = []
        for start, end in self._chunks(rows):
            out.append(np.asarray(self.model(self._padded(rows[start:end]), training=False), np.float32))
        return np.concatenate(out)

    def embeddings(self, ids):
        """The embedding layer's output for one text's ids `(time,)`: `(time, dim)`, float32."""
        return np.array(keras.ops.cast(self.layer(ids[None, :]), "float32"))[0]  # a writable copy

    def gradients(self, rows, shifts, labels, target):
        """The target and its gradient with respect to the embeddings, the embedding layer's
        output shifted by `shifts`.

        Args:
            rows: list of model inputs, `(time_i,)` each.
            shifts: list of np.ndarray `(time_i, dim)`. Added to the embeddings.
            labels: np.ndarray int `(rows,)`. The label whose target is taken.
            target: str. "probability" or "logit".

        Returns:
            list of (value, gradient `(time_i, dim)`), one per row.
        """
        out = []
        for start, end in self._chunks(rows):
            inputs = self._padded(rows[start:end])
            time = _token_ids(inputs).shape[1]
            shift = np.stack([np.pad(s, ((0, time - len(s)), (0, 0))) for s in shifts[start:end]])  # (b, time, dim)
            values, grads = _values_and_gradients(self.model, self.layer, inputs, shift, labels[start:end], target)
            out.extend((float(v), g[: len(s)]) for v, g, s in zip(values, grads, shifts[start:end]))
        return out


def _target(model, layer, inputs, shift, labels, target):
    """The target `(batch,)` of each row, the embeddings shifted by `shift` `(batch, time, dim)`."""
    with shifted_output(layer, shift):
        logits = keras.ops.cast(model(inputs, training=False), "float32")  # (batch, classes)
    if target == "probability":
        logits = keras.ops.softmax(logits, axis=-1)
    return keras.ops.take_along_axis(logits, keras.ops.convert_to_tensor(labels[:, None]), axis=1)[:, 0]


def _values_and_gradients(model, layer, inputs, shift, labels, target):
    """The targets `(batch,)` and their gradients with respect to the shift `(batch, time, dim)`."""
    if keras.backend.backend() == "jax":
        import jax

        def total(shift):
            values = _target(model, layer, inputs, shift, labels, target)
            return values.sum(), values

        (_, values), gradients = jax.value_and_grad(total, has_aux=True)(shift)
    else:
        shift = tf.convert_to_tensor(shift, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(shift)
            values = _target(model, layer, inputs, shift, labels, target)
        gradients = tape.gradient(values, shift)  # each row's target depends on its own shift only
    return np.asarray(values, np.float32), np.asarray(gradients, np.float32)


def _integrated_gradients(batches, inputs, words, labels, steps, baseline, target, padding_values):
    """Integrated gradients of each text: (attributions per word, f(baseline)) lists."""
    alphas = np.concatenate([[0.0], (np.arange(steps) + 0.5) / steps])  # the baseline, then the midpoints
    differences = []  # e - e0 per text `(time, dim)`, 0 where the baseline keeps the input
    for row, text_words in zip(inputs, words):
        ids = _token_ids(row)
        embeddings = batches.embeddings(ids)
        if baseline == "pad":
            pad = np.full_like(ids, _token_ids(padding_values))
            difference = embeddings - batches.embeddings(pad)
        else:
            difference = embeddings
        kept = np.ones(len(ids), bool)  # positions outside the words ([CLS], [SEP]) keep their embedding
        kept[[p for _, positions in text_words for p in positions]] = False
        difference[kept] = 0.0
        differences.append(difference)
    rows, shifts, row_labels = [], [], []
    for row, difference, label in zip(inputs, differences, labels):
        for alpha in alphas:
            rows.append(row)
            shifts.append((alpha - 1.0) * difference)  # the layer's output e becomes e0 + alpha (e - e0)
            row_labels.append(label)
    results = batches.gradients(rows, shifts, np.asarray(row_labels), target)
    attributions, baseline_values = [], []
    for i, (difference, text_words) in enumerate(zip(differences, words)):
        points = results[i * len(alphas) : (i + 1) * len(alphas)]
        mean_gradient = np.mean([gradient for _, gradient in points[1:]], axis=0)  # (time, dim)
        per_token = np.sum(difference * mean_gradient, axis=-1)  # (time,)
        attributions.append([float(per_token[positions].sum()) for _, positions in text_words])
        baseline_values.append(points[0][0])
    return attributions, baseline_values


def _without(row, positions):
    """One text's inputs with the tokens at `positions` removed (an empty result becomes one
    out-of-vocabulary token, as the preprocessor encodes an empty text)."""
    keep = np.ones(len(_token_ids(row)), bool)
    keep[positions] = False
    if not keep.any():
        return np.array([OOV_ID], np.int32)
    return _map(lambda value: value[keep], row)


def _occlusion(batches, inputs, words, labels, values, target):
    """Leave-one-word-out attributions of each text: the target's drop without the word."""
    rows, owners = [], []
    for i, (row, text_words) in enumerate(zip(inputs, words)):
        for _, positions in text_words:
            rows.append(_without(row, positions))
            owners.append(i)
    logits = batches.logits(rows)  # (rows, classes)
    scores = _softmax(logits) if target == "probability" else logits
    occluded = scores[np.arange(len(rows)), labels[owners]]
    attributions = [[] for _ in inputs]
    for owner, value in zip(owners, occluded):
        attributions[owner].append(float(values[owner] - value))
    return attributions


# Rendering. Strength: |attribution| relative to the largest in the explanation.

STRENGTHS = ((0.5, "strong"), (0.2, "medium"), (0.05, "weak"))
TERMINAL_STYLES = {"strong": dict(bold=True), "medium": {}, "weak": dict(dim=True)}


def _strengths(attributions):
    largest = max((abs(a) for a in attributions), default=0.0)
    return [abs(a) / largest if largest > 0 else 0.0 for a in attributions]


def _bucket(strength):
    return next((name for floor, name in STRENGTHS if strength >= floor), None)


def summary_line(explanation):
    """`label 0.923 · method (settings) · completeness` in one line of plain text."""
    e = explanation
    parts = [f"{e.label} {e.probability:.3f}", choices.EXPLAIN_METHODS[e.method]]
    if e.method == "ig":
        parts[-1] += f" ({e.steps} step{'s' if e.steps != 1 else ''}, {e.baseline} baseline)"
        parts.append(
            f"completeness: sum {e.attribution_sum:+.4f} vs f(x) - f(baseline) {e.value - e.baseline_value:+.4f} "
            f"(gap {e.completeness_gap:.1%})"
        )
    if e.truncated:
        parts.append("text cut at the model's length: explained up to the cut")
    return " · ".join(parts)


def render_text(explanation, color=True, top=5):
    """An explanation for a terminal: its summary, its words and the strongest words.

    Args:
        explanation: Explanation.
        color: bool. Words coloured by sign (green: for the predicted label, red: against) and
            strength (bold, plain, dim); without colour, each word carries its value.
        top: int. How many of the strongest words to list.

    Returns:
        str, several lines.
    """
    e = explanation
    shown = []
    for token, value, strength in zip(e.tokens, e.attributions, _strengths(e.attributions)):
        bucket = _bucket(strength)
        if not color:
            shown.append(f"{token}[{value:+.3f}]")
        elif bucket is None:
            shown.append(token)
        else:
            shown.append(click.style(token, fg="green" if value > 0 else "red", **TERMINAL_STYLES[bucket]))
    separator = e.separator if color else " "
    strongest = sorted(zip(e.tokens, e.attributions), key=lambda pair: -abs(pair[1]))[:top]
    lines = [
        summary_line(e),
        separator.join(shown) + (" [cut]" if e.truncated else ""),
        "strongest: " + ", ".join(f"{token!r} {value:+.3f}" for token, value in strongest),
    ]
    if e.warning:
        lines.append(f"warning: {e.warning}")
    return "\n".join(lines)


def _background(value, strength):
    """An inline background colour: green (for the label) or red (against), stronger for larger."""
    if strength == 0:
        return "transparent"
    rgb = "22,163,74" if value > 0 else "220,38,38"
    return f"rgba({rgb},{0.08 + 0.62 * strength:.2f})"


def render_html_fragment(explanation):
    """One explanation as an HTML fragment (inline styles only), for a page or a report.

    Each word is a `<span>` coloured by sign and strength, with its value in the `title`
    tooltip and in `data-attribution`.

    Args:
        explanation: Explanation.

    Returns:
        str. A `<section class="tfrnn-explanation">` element.
    """
    e = explanation
    spans = []
    for token, value, strength in zip(e.tokens, e.attributions, _strengths(e.attributions)):
        spans.append(
            f'<span title="{value:+.4f}" data-attribution="{value:.6g}" style="background:{_background(value, strength)};'
            f'border-radius:3px;padding:0 2px">{html.escape(token)}</span>'
        )
    cut = ' <span style="color:#6b7280">[cut: explained up to the model\'s length]</span>' if e.truncated else ""
    warning = (
        f'<p class="tfrnn-warning" style="margin:.25rem 0;color:#b45309">warning: {html.escape(e.warning)}</p>'
        if e.warning
        else ""
    )
    return (
        '<section class="tfrnn-explanation" style="margin:1rem 0;padding:.75rem;border:1px solid #d1d5db;'
        'border-radius:6px">'
        f'<p class="tfrnn-summary" style="margin:0 0 .5rem;font-size:.9rem;color:#374151">{html.escape(summary_line(e))}</p>'
        f"{warning}"
        '<p class="tfrnn-tokens" style="margin:0;line-height:1.9;white-space:pre-wrap;overflow-wrap:anywhere">'
        f"{html.escape(e.separator).join(spans)}{cut}</p>"
        "</section>"
    )


def render_html_legend():
    """A line of HTML saying what the colours mean."""
    return (
        '<p class="tfrnn-legend" style="font-size:.9rem">'
        f'<span style="background:{_background(1, 1)};padding:0 4px">for</span> the predicted label, '
        f'<span style="background:{_background(-1, 1)};padding:0 4px">against</span> it; '
        "darker is stronger; hover or tap a word for its attribution.</p>"
    )


def write_html_page(path, explanations, title="tfrnn explain"):
    """Writes explanations as one self-contained HTML page (no network), atomically.

    Args:
        path: str or Path. The page to write.
        explanations: list of Explanation.
        title: str. The page's title and heading.
    """
    body = "\n".join(render_html_fragment(e) for e in explanations)
    atomic_write_text(
        path,
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:system-ui,-apple-system,sans-serif;max-width:50rem;margin:0 auto;"
        "padding:1rem;line-height:1.5;color:#111827;overflow-wrap:anywhere}</style>\n"
        f"</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{render_html_legend()}\n{body}\n</body>\n</html>\n",
    )
