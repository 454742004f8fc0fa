"""`tfrnn pretrain --model rnn`: the AWD-LSTM language model over a continuous token stream."""

import dataclasses
import math

import keras

from tfrnn.data.lm_stream import stream_dataset
from tfrnn.errors import DataError
from tfrnn.models.language_model import RNNLanguageModel
from tfrnn.models.transfer import copy_layer_weights
from tfrnn.training.pretrain import Fitted, Perplexity, StreamStates, compile_and_fit
from tfrnn.training.train import save_model


@dataclasses.dataclass(frozen=True)
class StreamData:
    """The token streams, batched for truncated backpropagation through time.

    Args:
        train: tf.data.Dataset. (token_ids, targets) int32 `(batch, window)`, in stream order.
        held_out: tf.data.Dataset or None. The same for the held-out documents.
        steps: int. Batches in one pass of `train`.
        train_tokens: int. Tokens in one pass of `train`.
        held_out_tokens: int. Tokens in `held_out`.
    """

    train: object
    held_out: object
    steps: int
    train_tokens: int
    held_out_tokens: int


def make_data(spec, preprocessor, train_docs, held_out, log):
    """Tokenises the documents into streams and cuts them into batches.

    Raises:
        DataError: a stream too short for one batch of data.batch_size rows of data.max_len tokens.
    """
    batch, window = spec.data.batch_size, spec.data.max_len
    streams = []
    for name, docs in (("training", train_docs), ("held-out", held_out)):
        if not docs:
            streams.append((None, 0))
            continue
        try:
            streams.append(stream_dataset(preprocessor.encode_stream(docs), batch, window))
        except ValueError as error:
            raise DataError(
                f"the {name} text: {error}; lower data.batch_size or data.max_len, or add text "
                "(or lower data.validation_split)"
            ) from None
    (train, train_tokens), (held, held_tokens) = streams
    steps = train_tokens // (batch * window)
    log(
        f"stream: {train_tokens:,} tokens to train on ({steps} batches of {batch} x {window}), {held_tokens:,} held out"
    )
    return StreamData(train, held, steps, train_tokens, held_tokens)


def build_language_model(spec, preprocessor):
    """The AWD-LSTM language model a spec describes, for batches of `data.batch_size` rows."""
    lm = spec.model.rnn
    return RNNLanguageModel(
        preprocessor.vocabulary_size,
        embedding_dim=lm.embedding_dim,
        units=lm.units,
        num_layers=lm.layers,
        batch_size=spec.data.batch_size,
        embedding_dropout=lm.embedding_dropout,
        input_dropout=lm.input_dropout,
        hidden_dropout=lm.hidden_dropout,
        output_dropout=lm.output_dropout,
        weight_dropout=lm.weight_dropout,
        ar=lm.ar,
        tar=lm.tar,
        sampled=lm.sampled,
        seed=spec.train.seed,
        preprocessor=preprocessor,
    )


def fit_language_model(spec, paths, preprocessor, data, base, log):
    """Builds (from `base`'s weights when given), fits and saves the language model; returns
    Fitted with the exact held-out perplexity of the best epoch and the training throughput."""
    model = build_language_model(spec, preprocessor)
    if base is not None:
        copy_layer_weights(base.model, model, [layer.name for layer in model.layers if layer.weights] + ["output_bias"])
    counts = f"{model.count_params():,} parameters"
    log(f"language model: {counts}, softmax sampled over {spec.model.rnn.sampled or 'all'} words while training")
    seconds = compile_and_fit(
        model, spec, paths, data.train, data.held_out, data.steps, extra_callbacks=(StreamStates(), Perplexity())
    )
    if data.held_out is None:  # the checkpoint kept the best training loss
        save_model(model, paths.model)
    best = keras.saving.load_model(paths.model)
    epochs = len(model.history.history.get("loss", [])) if model.history else 0
    metrics = {
        "parameters": int(model.count_params()),
        "train_tokens": data.train_tokens,
        "held_out_tokens": data.held_out_tokens,
        "tokens_per_second": round(data.train_tokens * max(epochs, 1) / max(seconds, 1e-9), 1),
    }
    if data.held_out is None:
        return Fitted(metrics, "perplexity", f"{data.train_tokens:,} tokens, no held-out text")
    best.reset_states()
    loss = float(best.evaluate(data.held_out, verbose=0, return_dict=True)["loss"])
    perplexity = math.exp(min(loss, 50.0))
    metrics.update(held_out_loss=round(loss, 5), perplexity=round(perplexity, 3))
    return Fitted(metrics, "perplexity", f"held-out perplexity {perplexity:.2f} (exact softmax)")
