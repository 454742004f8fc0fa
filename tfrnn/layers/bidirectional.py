"""`keras.layers.Bidirectional` that runs tfrnn's LSTM and GRU pairs in one fused call."""

import functools

import keras
from keras import ops

from tfrnn.layers import fused


@keras.saving.register_keras_serializable(package="tfrnn")
class Bidirectional(keras.layers.Bidirectional):
    """`keras.layers.Bidirectional`, with one fused bidirectional kernel call where it can run.

    Over two tfrnn LSTMs (JAX, PyTorch) or GRUs (PyTorch) that both take the fused kernel, without
    initial states, not stateful, without dropout or DropConnect in training (and without them at
    all on masked calls), both directions run in
    one call of the backend's bidirectional kernel (`tfrnn.layers.fused.run_bidirectional`), a
    masked batch included when its mask is right-padded. Everything else, and any other wrapped
    layer, is Keras' own Bidirectional: one call per direction. The weights, outputs and states
    are the same either way.

    Args: see `keras.layers.Bidirectional`.
    """

    def fused_unavailable(self, training=False, mask=None):
        """Why this wrapper cannot make one fused call, or None when it can."""
        return fused.bidirectional_unavailable(
            self.forward_layer, self.backward_layer, keras.backend.backend(), training, mask
        )

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if initial_state is not None or self.fused_unavailable(bool(training), mask):
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        two_calls = functools.partial(self._per_direction, sequences, mask, training)
        y, y_rev, states = fused.run_bidirectional(self, sequences, mask, two_calls)
        return self._merge(y, y_rev, states)

    def _per_direction(self, sequences, mask, training):
        """Keras' two calls, before merging: `(y, y_rev in original order, states)`."""
        outputs = []
        for layer in (self.forward_layer, self.backward_layer):
            result = layer(sequences, mask=mask, training=training)
            outputs.append(list(result) if self.return_state else [result])
        y, y_rev = outputs[0][0], outputs[1][0]
        if self.return_sequences:
            y_rev = ops.flip(y_rev, axis=1)
        return y, y_rev, outputs[0][1:] + outputs[1][1:]

    def _merge(self, y, y_rev, states):
        """Merges the directions by `merge_mode` and appends the states, as Keras does."""
        y, y_rev = ops.cast(y, self.compute_dtype), ops.cast(y_rev, self.compute_dtype)
        merged = {
            "concat": lambda: ops.concatenate([y, y_rev], axis=-1),
            "sum": lambda: y + y_rev,
            "ave": lambda: (y + y_rev) / 2,
            "mul": lambda: y * y_rev,
            None: lambda: (y, y_rev),
        }[self.merge_mode]()
        if not self.return_state:
            return merged
        return (merged if self.merge_mode is None else (merged,)) + tuple(states)
