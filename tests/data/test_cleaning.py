"""clean_text, clean_texts and standardize: HTML, entities, Unicode normalisation, case,
punctuation and whitespace, each a keyword option."""

import pytest
import tensorflow as tf

from tfrnn.data import clean_text, clean_texts, standardize
from tfrnn.errors import ConfigError


def test_html_tags_become_spaces_and_entities_are_unescaped():
    text = "Great<br /><br />film &amp; <i>fun</i>&nbsp;&quot;10/10&quot;"
    assert clean_text(text, lowercase=True) == 'great film & fun "10/10"'
    assert clean_text(text) == 'Great film & fun "10/10"'  # strip_html is on by default


def test_lowercase_is_off_by_default():
    assert clean_text("GREAT Film ÉTÉ") == "GREAT Film ÉTÉ"
    assert clean_text("GREAT Film ÉTÉ", lowercase=True) == "great film été"  # Unicode-aware


def test_angle_brackets_that_are_not_tags_survive():
    assert clean_text("a < b, <3 and &lt;br&gt;") == "a < b, <3 and <br>"


def test_nfkc_folds_compatibility_characters():
    assert clean_text("ﬁne ＦＵＬＬ-width ①", unicode_form="NFKC", lowercase=True) == "fine full-width 1"
    assert clean_text("ﬁne") == "ﬁne"  # off by default: exports then need only TF


def test_options_off_keep_case_and_tags():
    assert clean_text("Bold <b>Move</b>", lowercase=False, strip_html=False) == "Bold <b>Move</b>"
    assert clean_text("Bold <b>Move</b>", strip_html=False) == "Bold <b>Move</b>"


def test_strip_punctuation_removes_ascii_punctuation_only():
    assert clean_text("Won't stop! (really), 好！", strip_punctuation=True) == "Wont stop really 好！"
    assert clean_text("Won't stop!") == "Won't stop!"  # off by default


def test_chinese_and_emoji_are_kept():
    text = "我很喜欢这部电影！😀 👍🏽 👨‍👩‍👧"
    # Characters and emoji (with modifiers, ZWJ) stay; NFKC would fold the full-width "！".
    assert clean_text(text) == text
    assert clean_text(text, lowercase=True) == text
    assert clean_text(text, unicode_form="NFKC") == "我很喜欢这部电影!😀 👍🏽 👨‍👩‍👧"


def test_whitespace_is_collapsed_and_trimmed():
    assert clean_text("\t a \n\n\u3000b\u00a0 c  ") == "a b c"
    assert clean_text(" <br /> \n") == ""


def test_clean_texts_keeps_order_and_takes_the_same_options():
    assert clean_texts(["A <b>B</b>", "  C  ", ""], lowercase=True) == ["a b", "c", ""]
    assert clean_texts([]) == []


def test_standardize_keeps_the_shape_of_a_string_tensor():
    texts = tf.constant([["A<br/>b", " c "], ["D!", "e"]])
    cleaned = standardize(texts, lowercase=True, strip_punctuation=True)
    assert cleaned.dtype == tf.string and cleaned.shape == (2, 2)
    assert [[t.decode() for t in row] for row in cleaned.numpy()] == [["a b", "c"], ["d", "e"]]


def test_unknown_unicode_form():
    with pytest.raises(ConfigError, match="unicode_form"):
        clean_text("x", unicode_form="NFX")


def test_no_config_argument():
    with pytest.raises(TypeError):
        clean_text("x", object())  # options are keywords only
