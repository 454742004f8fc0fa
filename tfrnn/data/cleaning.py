"""Text cleaning as TensorFlow string ops, so that training and serving clean alike.

The same function runs inside the model's preprocessor (training, evaluation, prediction) and
so inside the exported SavedModel's serving graph, which takes raw text. Only core TensorFlow
ops are used, so the export loads with `import tensorflow` alone, except with
`unicode_form` set: Unicode normalisation comes from TensorFlow Text, which the export then
needs at load time (TF Serving links it).
"""

import tensorflow as tf

from tfrnn.errors import ConfigError

# A tag starts with a letter (or `/` and a letter), so "a < b" and "<3" survive.
_TAG = r"<\s*/?\s*[A-Za-z][^<>]*>"
# The entities HTML text such as IMDB's uses; `&amp;` last, so "&amp;lt;" stays "&lt;".
_ENTITIES = [
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    ("&#39;", "'"),
    ("&#x27;", "'"),
    ("&apos;", "'"),
    ("&nbsp;", " "),
    ("&amp;", "&"),
]
_WHITESPACE = r"[\s\p{Z}]+"  # ASCII whitespace and Unicode spaces (U+00A0, U+3000, ...)
# keras.layers.TextVectorization's "strip_punctuation" set.
PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def standardize(texts, strip_html=True, unicode_form=None, lowercase=False, strip_punctuation=False):
    """Cleans a string tensor: HTML, Unicode form, case, punctuation, whitespace.

    Steps, in order: tags (`<br />`) become spaces and common entities (`&amp;`, `&lt;`,
    `&gt;`, `&quot;`, `&#39;`, `&apos;`, `&nbsp;`) are unescaped when `strip_html`; Unicode
    normalisation (`unicode_form`); lower-casing (Unicode-aware) when `lowercase`; ASCII
    punctuation removed when `strip_punctuation`; runs of whitespace become one space and the
    ends are trimmed. Chinese, emoji and other non-ASCII text pass through.

    Args:
        texts: tf.Tensor of tf.string, any shape.
        strip_html: bool. Remove tags and unescape entities.
        unicode_form: str or None. "NFC", "NFD", "NFKC" or "NFKD" (TensorFlow Text's op).
        lowercase: bool. Lower-case the text.
        strip_punctuation: bool. Also remove ASCII punctuation (word tokenizer).

    Returns:
        tf.Tensor of tf.string, the shape of `texts`.

    Raises:
        ConfigError: `unicode_form` is not NFC, NFD, NFKC, NFKD or None.
    """
    if strip_html:
        texts = tf.strings.regex_replace(texts, _TAG, " ")
        for entity, character in _ENTITIES:
            texts = tf.strings.regex_replace(texts, entity, character, replace_global=True)
    if unicode_form is not None:
        if unicode_form not in _FORMS:
            raise ConfigError(f"data.unicode_form={unicode_form!r}: expected one of {', '.join(_FORMS)} or null")
        import tensorflow_text

        texts = tensorflow_text.normalize_utf8(texts, unicode_form)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_punctuation:
        texts = tf.strings.regex_replace(texts, PUNCTUATION, "")
    texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
    return tf.strings.strip(texts)


def clean_texts(texts, **options):
    """`standardize` over a list of Python strings.

    Args:
        texts: list of str. Raw texts.
        **options: `standardize`'s keyword arguments.

    Returns:
        list of str.
    """
    if not texts:
        return []
    cleaned = standardize(tf.constant(texts, tf.string), **options).numpy()
    return [t.decode("utf-8") for t in cleaned]


def clean_text(text, **options):
    """`clean_texts` for one text."""
    return clean_texts([text], **options)[0]
