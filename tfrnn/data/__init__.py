"""Labelled text: sources, cleaning, splits, text encoders and `tf.data` pipelines."""

from tfrnn.data.cleaning import clean_text, clean_texts, standardize
from tfrnn.data.encoders import load_encoder, make_encoder
from tfrnn.data.examples import Examples
from tfrnn.data.loading import has_test_split, load_examples
from tfrnn.data.pipeline import make_dataset, make_distributed_dataset
from tfrnn.data.split import train_validation_split
from tfrnn.data.vectorize import WordEncoder, load_vectorizer, make_vectorizer, save_vocabulary
from tfrnn.data.wordpiece import WordPieceEncoder

__all__ = [
    "Examples",
    "WordEncoder",
    "WordPieceEncoder",
    "clean_text",
    "clean_texts",
    "has_test_split",
    "load_encoder",
    "load_examples",
    "load_vectorizer",
    "make_dataset",
    "make_distributed_dataset",
    "make_encoder",
    "make_vectorizer",
    "save_vocabulary",
    "standardize",
    "train_validation_split",
]
