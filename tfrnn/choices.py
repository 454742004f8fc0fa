"""Every setting with a fixed set of values, in one table each: name -> what it means.

The config's validation, its error messages, the CLI's `click.Choice` lists and the modules that
act on a choice all read these tables, so a new cell, kind or strategy is added here once and
then implemented where the table's docstring says. Importing this module is free (no Keras, no
TensorFlow), so `tfrnn --help` stays fast.
"""

# model.kind: each has a section of its own (model.rnn, model.feedforward, model.bert) in
# tfrnn.config and a builder in tfrnn.models.factory.
KINDS = {
    "rnn": "embedding -> recurrent layers -> pooling -> dense head",
    "feedforward": "mean of the token embeddings -> dense -> head (word order ignored)",
    "bert": "a BERT encoder (a checkpoint, or a small one from scratch) -> pooling -> head",
}

# `tfrnn pretrain`'s model.kind: each has a section in tfrnn.config (PRETRAIN_SECTIONS) and a module
# tfrnn.training.pretrain_KIND.
PRETRAIN_KINDS = {
    "rnn": "an AWD-LSTM language model (next word), from tfrnn's LSTM layers",
    "bert": "a masked language model (keras-hub's BertMaskedLM), from scratch or a checkpoint",
}

# model.rnn.cell -> the tfrnn.layers class.
CELLS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU", "feedback": "Feedback"}

# model.rnn.feedback_base: the feedback cell's base step f(h_{t-1}, x_t).
FEEDBACK_BASES = {"lstm": "an LSTM step", "gru": "a GRU step"}

# model.peft.method -> tfrnn.models.peft (none: every weight trains).
PEFT_METHODS = {
    "lora": "low-rank updates of the attention's query and value (or `targets`), Keras' enable_lora",
    "qlora": "LoRA over base weights quantized to int8 (Keras' quantize)",
    "dora": "LoRA's direction with a learned magnitude per output unit (weight-decomposed LoRA)",
    "adapter": "bottleneck adapters after the attention and the feed-forward sublayers (Houlsby)",
    "prefix": "learned key/value prefixes in every attention layer (prefix tuning)",
    "prompt": "learned soft tokens before the input embeddings (prompt tuning)",
    "ia3": "learned rescaling of keys, values and feed-forward activations ((IA)3)",
    "adalora": "SVD-form low-rank updates whose ranks are pruned to a budget by importance (AdaLoRA)",
}

# Pooling over time, per kind (tfrnn.layers.MaskedGlobalPooling1D does mean, max and concat).
RNN_POOLINGS = {
    "last": "the last step's output",
    "mean": "masked mean",
    "max": "masked max",
    "concat": "last, max and mean side by side (ULMFiT's concat pooling)",
}
BERT_POOLINGS = {"cls": "BERT's pooled [CLS] output", "mean": "masked mean", "max": "masked max"}

# model.rnn.tokenizer and model.feedforward.tokenizer (BERT always uses its WordPiece).
TOKENIZERS = {
    "word": "words split on whitespace, ASCII punctuation removed",
    "char": "one token per character (Chinese)",
}

# data.source -> tfrnn.data.sources.
SOURCES = {
    "embedded": "the movie reviews shipped with tfrnn",
    "imdb": "TFDS imdb_reviews (downloads once)",
    "aclimdb": "an aclImdb folder (train/pos, train/neg, test/pos, test/neg)",
    "file": "a CSV, TSV or JSONL file",
}

BLANK_TEXTS = {"skip": "skip blank texts and count them", "error": "stop at the first blank text"}

# train.optimizer -> tfrnn.training.optimizers.
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW (decoupled weight decay; skips biases and LayerNorm)"}

# train.decay -> tfrnn.training.schedules (WarmupDecay; SlantedTriangular for "slanted").
SCHEDULES = {
    "constant": "constant after warmup",
    "linear": "linear to 0",
    "cosine": "cosine to 0",
    "slanted": "ULMFiT's slanted triangular rates (rise over warmup_ratio, then fall to 1/32)",
}

# train.unfreeze -> tfrnn.training.ulmfit.GradualUnfreezing.
UNFREEZE = {
    "none": "every layer trains from the first epoch",
    "gradual": "the head first, then one more layer group per epoch, top down (ULMFiT)",
}

# train.adversarial.method -> tfrnn.training.adversarial (none: plain training).
ADVERSARIAL = {
    "fgm": "one step along the normalised loss gradient on the embeddings (Miyato et al. 2017)",
    "pgd": "`steps` projected gradient steps inside the epsilon ball (Madry et al. 2018)",
    "vat": "virtual adversarial: KL between clean and perturbed predictions, no labels needed",
}

# data.augment.unit: what the EDA operations move, delete and replace (tfrnn.data.augment).
AUGMENT_UNITS = {
    "auto": "characters under model.*.tokenizer=char, else words",
    "word": "whitespace-separated words",
    "char": "characters (Chinese)",
}

# tfrnn explain --method -> tfrnn.explain.
EXPLAIN_METHODS = {"ig": "integrated gradients", "occlusion": "occlusion (leave one word out)"}

# tfrnn explain --baseline: integrated gradients' starting point.
EXPLAIN_BASELINES = {"pad": "the padding token's embedding", "zeros": "zero embeddings"}

MONITORS = {"val_loss": "lowest validation loss", "val_accuracy": "highest validation accuracy"}

PRECISIONS = {
    "auto": "mixed bfloat16 on a TPU, else float32",
    "float32": "float32",
    "mixed_float16": "mixed float16 (GPU)",
    "mixed_bfloat16": "mixed bfloat16 (TPU, recent CPUs)",
}

# train.jit_compile: compile the train, evaluation and predict steps (XLA, or JAX's jit).
JIT_COMPILE = {
    "auto": "on under JAX, on a TPU and on one GPU; off on TensorFlow's CPU, where XLA measured slower",
    "true": "always",
    "false": "never (under JAX: op by op, slow)",
}

# train.strategy -> tfrnn.distribute.
STRATEGIES = {
    "auto": "a TPU if attached, else mirrored over several GPUs, else one device",
    "one-device": "one device",
    "mirrored": "MirroredStrategy over the devices of this machine",
    "multi-worker": "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG",
    "tpu": "TPUStrategy",
}
