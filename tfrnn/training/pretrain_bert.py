"""`tfrnn pretrain --model bert`: masked-language-model pretraining (keras-hub's BertMaskedLM and
MaskedLMMaskGenerator) of a small BERT from scratch, or of a checkpoint (domain-adaptive)."""

import dataclasses
import math

import keras

from tfrnn.data.masked_lm import make_masked_lm_dataset
from tfrnn.errors import ConfigError
from tfrnn.models.bert import BertMaskedLM, compile_masked_lm
from tfrnn.models.bert.classifier import random_backbone
from tfrnn.training.optimizers import make_optimizer
from tfrnn.training.pretrain import Fitted
from tfrnn.training.train import run_callbacks, save_model


@dataclasses.dataclass(frozen=True)
class MaskedData:
    """The documents to mask (the datasets are made under the strategy, in `fit_language_model`).

    Args:
        train: list of str. Documents to train on.
        held_out: list of str. Documents whose masked-LM loss is reported (masks fixed).
    """

    train: list
    held_out: list


def make_data(spec, preprocessor, train_docs, held_out, log):
    """Checks the vocabulary can mask; the batches are made per replica later.

    Raises:
        ConfigError: a checkpoint vocabulary without [MASK].
    """
    if "[MASK]" not in preprocessor.get_vocabulary():
        raise ConfigError(
            f"model.bert.checkpoint={spec.model.bert.checkpoint!r}: its vocabulary has no [MASK] token, so it "
            "cannot be pretrained as a masked language model"
        )
    return MaskedData(train_docs, held_out)


def _backbone(spec, preprocessor, base):
    """The encoder: `base`'s (a checkpoint, or the pretrain run this one goes on from), else fresh."""
    if base is not None:
        return base.load_backbone()
    bert = spec.model.bert
    return random_backbone(preprocessor.vocabulary_size, bert.layers, bert.hidden_dim, bert.heads, spec.data.max_len)


def fit_language_model(spec, paths, preprocessor, data, base, log):
    """Builds the masked LM (fresh, a checkpoint's or `base`'s encoder), fits and saves it;
    returns Fitted with the held-out masked-LM loss, accuracy and perplexity of the best epoch."""
    model = BertMaskedLM(_backbone(spec, preprocessor, base), preprocessor=preprocessor)
    log(f"masked language model: {model.count_params():,} parameters, {spec.model.bert.mask_rate:.0%} of tokens masked")
    batch, rate, seed = spec.data.batch_size, spec.model.bert.mask_rate, spec.train.seed
    steps = max(1, math.ceil(len(data.train) / batch))
    train_ds = make_masked_lm_dataset(data.train, preprocessor, batch, rate, seed, training=True, repeat=True)
    val_ds, val_steps = None, None
    if data.held_out:
        val_ds = make_masked_lm_dataset(data.held_out, preprocessor, batch, rate, seed, training=False, repeat=True)
        val_steps = math.ceil(len(data.held_out) / batch)
    compile_masked_lm(model, make_optimizer(spec.train, steps), jit_compile=spec.train.compiled)
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=spec.train.epochs,
        steps_per_epoch=steps,
        validation_steps=val_steps,
        callbacks=run_callbacks(paths, spec, val_ds is not None),
        shuffle=False,
        verbose=spec.train.verbose,
    )
    if val_ds is None:  # the checkpoint kept the best training loss
        save_model(model, paths.model)
        return Fitted({"parameters": int(model.count_params())}, "perplexity", "no held-out text")
    best = keras.saving.load_model(paths.model)
    result = best.evaluate(val_ds, steps=val_steps, verbose=0, return_dict=True)
    metrics = {
        "parameters": int(model.count_params()),
        "held_out_loss": round(float(result["loss"]), 5),
        "masked_lm_accuracy": round(float(result["accuracy"]), 5),
        "perplexity": round(float(result["perplexity"]), 3),
    }
    summary = f"held-out masked-LM accuracy {metrics['masked_lm_accuracy']:.4f}, perplexity {metrics['perplexity']:.2f}"
    return Fitted(metrics, "perplexity", summary)
