"""The text encoder a run uses: words or characters (`WordEncoder`), or WordPiece (BERT)."""

from tfrnn.data.vectorize import WordEncoder, load_vectorizer, make_vectorizer
from tfrnn.data.wordpiece import WordPieceEncoder, learn_vocabulary, read_vocabulary


def make_encoder(texts, config, vocabulary=None):
    """Builds the encoder for a new run.

    Args:
        texts: list of str. Raw training texts (they make the vocabulary when none is given).
        config: DataConfig. `tokenizer` picks the encoder: "word", "char" or "wordpiece".
        vocabulary: str or None. A WordPiece vocabulary file (a pretrained checkpoint's); None
            learns one from `texts`.

    Returns:
        WordEncoder or WordPieceEncoder.
    """
    if config.tokenizer == "wordpiece":
        return WordPieceEncoder(vocabulary or learn_vocabulary(texts, config), config)
    return WordEncoder(make_vectorizer(texts, config), config)


def load_encoder(path, config):
    """Rebuilds a run's encoder from its vocabulary file and config: same text, same ids.

    Args:
        path: str or Path. The run's vocabulary.txt.
        config: DataConfig. The run's data config.

    Returns:
        WordEncoder or WordPieceEncoder.

    Raises:
        DataError: a missing or malformed vocabulary file.
    """
    if config.tokenizer == "wordpiece":
        return WordPieceEncoder(read_vocabulary(path), config)
    return WordEncoder(load_vectorizer(path, config), config)
