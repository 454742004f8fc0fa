"""clean_text: HTML, entities, Unicode normalisation, case and whitespace."""

import pytest

from tfrnn.config import DataConfig
from tfrnn.data import clean_text
from tfrnn.errors import ConfigError


def test_html_tags_become_spaces_and_entities_are_unescaped():
    text = "Great<br /><br />film &amp; <i>fun</i>&nbsp;&quot;10/10&quot;"
    assert clean_text(text, DataConfig()) == 'great film & fun "10/10"'


def test_angle_brackets_that_are_not_tags_survive():
    assert clean_text("a < b, <3 and &lt;br&gt;", DataConfig()) == "a < b, <3 and <br>"


def test_nfkc_folds_compatibility_characters():
    assert clean_text("ﬁne ＦＵＬＬ-width ①", DataConfig(unicode_form="NFKC")) == "fine full-width 1"
    assert clean_text("ﬁne", DataConfig()) == "ﬁne"  # off by default: exports then need only TF


def test_options_off_keep_case_and_tags():
    config = DataConfig(lowercase=False, strip_html=False)
    assert clean_text("Bold <b>Move</b>", config) == "Bold <b>Move</b>"


def test_chinese_and_emoji_are_kept():
    text = "我很喜欢这部电影！😀 👍🏽 👨‍👩‍👧"
    # Characters and emoji (with modifiers, ZWJ) stay; NFKC would fold the full-width "！".
    assert clean_text(text, DataConfig()) == text
    assert clean_text(text, DataConfig(unicode_form="NFKC")) == "我很喜欢这部电影!😀 👍🏽 👨‍👩‍👧"


def test_whitespace_is_collapsed_and_trimmed():
    assert clean_text("\t a \n\n\u3000b\u00a0 c  ", DataConfig()) == "a b c"
    assert clean_text(" <br /> \n", DataConfig()) == ""


def test_unknown_unicode_form():
    with pytest.raises(ConfigError, match="unicode_form"):
        clean_text("x", DataConfig(unicode_form="NFX"))
