"""Labelled text: sources, cleaning, splits, the vocabulary and `tf.data` pipelines."""

from tfrnn.data.cleaning import clean_text, clean_texts, standardize
from tfrnn.data.examples import Examples
from tfrnn.data.loading import has_test_split, load_examples
from tfrnn.data.pipeline import make_dataset, make_distributed_dataset, texts_to_ids
from tfrnn.data.split import train_validation_split
from tfrnn.data.vectorize import load_vectorizer, make_vectorizer, save_vocabulary

__all__ = [
    "Examples",
    "clean_text",
    "clean_texts",
    "has_test_split",
    "load_examples",
    "load_vectorizer",
    "make_dataset",
    "make_distributed_dataset",
    "make_vectorizer",
    "save_vocabulary",
    "standardize",
    "texts_to_ids",
    "train_validation_split",
]
