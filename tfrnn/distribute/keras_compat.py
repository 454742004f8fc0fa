"""Makes Keras 3's `model.fit` work under `tf.distribute.MultiWorkerMirroredStrategy`, and under
MirroredStrategy with batches whose length differs between replicas (bucketed text).

Upstream bug keras-team/keras#20585 (open): with several workers, Keras' TensorFlow trainer
(`keras/src/backend/tensorflow/trainer.py`) fails in two places.

1. `TensorFlowTrainer._maybe_symbolic_build` builds the model from the first batch, which it
   averages across replicas with `strategy.reduce`; under multi-worker that raises "Attempt to
   convert a value (PerReplica:{...}) with an unsupported type". With several replicas on one
   worker it sums the replicas' batches, which fails when their time axes differ ("Inputs to
   operation AddN ... must have the same size and shape"). The replacement builds from the
   first local replica's batch whenever there are several replicas: the build needs shapes and
   dtypes, not values.
2. `reduce_per_replica` averages the step's outputs with `strategy.reduce("MEAN", v, axis=0)`
   under multi-worker; loss and metric results are scalars, so that raises "Invalid reduction
   dimension 0 for input with 0 dimensions". The replacement averages scalars with `axis=None`
   (across replicas only, as the single-worker path does) and leaves other outputs to Keras.

Both replacements call the originals unchanged with a single replica, and the second unless the
strategy runs in multi-worker mode, so everything else behaves exactly as in Keras.

`patch_multi_worker_fit` applies only to the Keras versions in `BROKEN_KERAS`, those whose
private trainer code the replacements were written against; on any other version it does
nothing, so it retires itself when the project moves to a newer Keras. If that Keras is still
broken, the two-worker test in tests/test_keras_compat.py fails and `BROKEN_KERAS` needs a
look.
"""

import functools

import keras
from packaging.specifiers import SpecifierSet
from packaging.version import Version

BROKEN_KERAS = SpecifierSet(">=3.15,<3.16")
_MARK = "_tfrnn_multi_worker_fix"


def patch_multi_worker_fit():
    """Applies the multi-worker fix to Keras' TensorFlow trainer once, on broken versions only.

    Returns:
        bool. True if the fix is in place (applied now or before), False on a Keras outside
            `BROKEN_KERAS`, where nothing is changed.
    """
    if Version(keras.__version__) not in BROKEN_KERAS:
        return False
    from keras.src.backend.tensorflow import trainer

    build = trainer.TensorFlowTrainer._maybe_symbolic_build
    if not getattr(build, _MARK, False):
        trainer.TensorFlowTrainer._maybe_symbolic_build = _marked(_build_from_local_replica(build))
        trainer.reduce_per_replica = _marked(_mean_scalars_across_workers(trainer.reduce_per_replica))
    return True


def _marked(function):
    """Tags a replacement so that `patch_multi_worker_fit` recognises it.

    Args:
        function: callable. The replacement.

    Returns:
        callable. `function` itself.
    """
    setattr(function, _MARK, True)
    return function


def _is_multi_worker(strategy):
    """Whether `strategy` is a MultiWorkerMirroredStrategy in multi-worker mode (Keras' own test).

    Args:
        strategy: tf.distribute.Strategy or None. The strategy.

    Returns:
        bool.
    """
    from keras.src.backend.tensorflow import trainer

    return strategy is not None and trainer._collective_all_reduce_multi_worker(strategy)


def _first_local(strategy, value):
    """The first local replica's part of a distributed value (the value itself if plain).

    Args:
        strategy: tf.distribute.Strategy. The strategy that produced `value`.
        value: tf.distribute.DistributedValues or tf.Tensor. The value.

    Returns:
        tf.Tensor.
    """
    return strategy.experimental_local_results(value)[0]


def _build_from_local_replica(original):
    """Wraps `TensorFlowTrainer._maybe_symbolic_build` to build from the first local replica
    when there are several replicas.

    Args:
        original: callable. Keras' `_maybe_symbolic_build(self, iterator=None, data_batch=None)`.

    Returns:
        callable. The replacement method.
    """

    @functools.wraps(original)
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or strategy.num_replicas_in_sync == 1:
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = keras.tree.map_structure(functools.partial(_first_local, strategy), next(batches))
            break
        return original(self, data_batch=data_batch)

    return _maybe_symbolic_build


def _mean_scalars_across_workers(original):
    """Wraps `reduce_per_replica` to average scalars across workers with `axis=None`.

    Args:
        original: callable. Keras' `reduce_per_replica(values, strategy, reduction)`.

    Returns:
        callable. The replacement function.
    """

    @functools.wraps(original)
    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not _is_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce(value):
            if _first_local(strategy, value).shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return keras.tree.map_structure(reduce, values)

    return reduce_per_replica
