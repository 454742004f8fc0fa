"""Labelled text: sources, cleaning, splits, augmentation (EDA), the models' text preprocessors and `tf.data`
pipelines.

BERT's preprocessor (`tfrnn.data.wordpiece`) needs keras-hub and is imported only for BERT runs.
"""

from tfrnn.data.augment import Neighbours, augment_examples
from tfrnn.data.cleaning import clean_text, clean_texts, standardize
from tfrnn.data.examples import Examples
from tfrnn.data.loading import has_test_split, load_examples
from tfrnn.data.pipeline import make_dataset, make_distributed_dataset
from tfrnn.data.preprocessing import TextPreprocessor, WordPreprocessor, make_preprocessor
from tfrnn.data.split import train_validation_split

__all__ = [
    "Examples",
    "Neighbours",
    "TextPreprocessor",
    "WordPreprocessor",
    "augment_examples",
    "clean_text",
    "clean_texts",
    "has_test_split",
    "load_examples",
    "make_dataset",
    "make_distributed_dataset",
    "make_preprocessor",
    "standardize",
    "train_validation_split",
]
