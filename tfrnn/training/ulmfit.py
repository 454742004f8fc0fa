"""ULMFiT's fine-tuning (Howard & Ruder 2018): discriminative learning rates and gradual
unfreezing over groups of a model's layers, bottom to top (the embedding, each LSTM, the head).
Its slanted triangular rates are `tfrnn.training.schedules.SlantedTriangular`, its concat
pooling `tfrnn.layers.MaskedGlobalPooling1D("concat")`.

The optimizer (`wrap_optimizer`) gives group g of n the rate lr * factor^-(n - 1 - g) and trains
only the top `unfrozen_groups` groups, an optimizer variable (so it lives in the compiled step,
under tf.function, XLA and jax.jit, and is saved and restored with the optimizer's state) that
`GradualUnfreezing` sets at each epoch's start. Every group runs the optimizer's own
`update_step` at every step (one compiled step for all unfreezing stages: nothing retraces), and
each write that step makes (`assign`, `assign_add`, `assign_sub`: the variable and its slots) is
masked with `where`: a frozen group's variables and slots keep their values bit for bit. A zero
rate alone would not do: Adam would still accumulate moments, and the variable would jump once
unfrozen. Each group counts its own updates (`group_steps`), and `iterations`, as `update_step`
reads it (Adam's bias correction), is that count: a group unfrozen at step k starts as a fresh
Adam would (PyTorch, and so fastai's ULMFiT, keeps a step per parameter too). The rate schedule
runs on the global step. Decoupled weight decay (AdamW) moves into `update_step`, scaled by the
group's rate and masked the same way.

The optimizer's config holds the groups as variable paths: a `.keras` file (`model.save`,
`ModelCheckpoint`) brings it back, state included, wherever this module is imported (it
registers `tfrnn>Ulmfit{Adam,AdamW,SGD}`, and the subclass of any other optimizer it wraps).

TensorFlow's sparse gradients (IndexedSlices: an embedding's, one slice per occurrence of a
token) are made dense (duplicates summed) before clipping, as JAX's are: Keras 3.15 would clip
them by the norm of the slices and Adam would square each slice, giving a second moment from a
sum of squares rather than the square of the gradient. Adam's moments are dense anyway.
"""

import keras
from keras import ops


def rnn_layer_groups(model):
    """An RNN classifier's layer groups, bottom to top, as fastai's ULMFiT splits an AWD-LSTM
    classifier: the embedding, each recurrent layer, then the head (`[]`: every other layer).
    Layers without trainable variables (frozen by a PEFT method) are left out.

    Args:
        model: tfrnn.models.RNNClassifier. Built.

    Returns:
        list of lists of layer names, for `layer_groups`.
    """
    from tfrnn.models.peft.rnn import encoder_layers  # keras only

    encoder = [name for name, layer in encoder_layers(model).items() if layer.trainable_variables]
    return [*([name] for name in encoder), []]


def layer_groups(model, names):
    """The model's trainable variables in groups, bottom to top, from their layers' names.

    Args:
        model: keras.Model. Built.
        names: list of lists of str. Each group's layer names (`model.get_layer`), bottom to
            top, e.g. [["embedding"], ["lstm_0"], ["lstm_1"], []]; the last group also takes
            every trainable variable no group names (the head).

    Returns:
        list of lists of keras.Variable, in the order of `model.trainable_variables`.

    Raises:
        ValueError: no groups, an unknown layer, a layer without trainable variables, a variable
            in two groups, or a group left empty.
    """
    if not names:
        raise ValueError("layer_groups: no groups")
    group_of = {}  # id(variable) -> its group
    for group, layer_names in enumerate(names):
        for name in layer_names:
            try:
                variables = model.get_layer(name).trainable_variables
            except ValueError:
                known = ", ".join(layer.name for layer in model.layers)
                raise ValueError(f"layer_groups: no layer {name!r} in model {model.name!r} (layers: {known})") from None
            if not variables:
                raise ValueError(f"layer_groups: layer {name!r} has no trainable variables")
            for variable in variables:
                if id(variable) in group_of:
                    raise ValueError(
                        f"layer_groups: {variable.path} is in group {group_of[id(variable)]} and in group {group}"
                    )
                group_of[id(variable)] = group
    last = len(names) - 1
    groups = [[v for v in model.trainable_variables if group_of.get(id(v), last) == g] for g in range(len(names))]
    for group, variables in enumerate(groups):
        if not variables:
            raise ValueError(f"layer_groups: group {group} ({names[group]}) has no trainable variables")
    return groups


def wrap_optimizer(optimizer, groups, factor=2.6, gradual=True):
    """The same optimizer (class, config and weight-decay exclusions) with discriminative rates
    and frozen groups.

    Args:
        optimizer: keras.optimizers.Optimizer. Unbuilt, not a LossScaleOptimizer (compile adds one).
        groups: list of lists of keras.Variable. The groups, bottom to top (`layer_groups`); the
            optimizer keeps their paths, so it must be built on variables with those paths.
        factor: float. Each group down trains at the rate of the one above divided by `factor`
            (the top group at the optimizer's rate; 2.6 in ULMFiT).
        gradual: bool. Whether the groups unfreeze one an epoch from the top (`GradualUnfreezing`)
            or all train from the start.

    Returns:
        An instance of `Ulmfit{type(optimizer).__name__}`, a registered subclass of
        type(optimizer) (`UlmfitOptimizer` first), to compile with. Its config is the optimizer's
        plus "ulmfit" (the groups' variable paths, factor, gradual), so a `.keras` file restores
        it. Its variables `unfrozen_groups` (int32: how many groups, from the top, train; 1 to
        start with if `gradual`, else all) and `group_steps` (int32 (n,): each group's updates)
        are saved and restored with its state.

    Raises:
        ValueError: an optimizer already wrapped or a LossScaleOptimizer, no or an empty group,
            a variable in two groups, a factor that is not positive.
    """
    if isinstance(optimizer, (UlmfitOptimizer, keras.optimizers.LossScaleOptimizer)):
        raise ValueError(
            f"wrap_optimizer: {type(optimizer).__name__}: pass a plain optimizer (compile adds the "
            "LossScaleOptimizer; wrap once)"
        )
    paths = [[v.path for v in group] for group in groups]
    if not paths or not all(paths):
        raise ValueError("wrap_optimizer: every group needs at least one variable")
    every = [path for group in paths for path in group]
    if len(set(every)) != len(every):
        raise ValueError(f"wrap_optimizer: variables in two groups: {sorted({p for p in every if every.count(p) > 1})}")
    settings = {"groups": paths, "factor": factor, "gradual": gradual}
    wrapped = ulmfit_class(type(optimizer)).from_config({**optimizer.get_config(), "ulmfit": settings})
    for name in ("_exclude_from_weight_decay", "_exclude_from_weight_decay_pattern"):  # not in the config
        if hasattr(optimizer, name):
            setattr(wrapped, name, getattr(optimizer, name))
    return wrapped


def ulmfit_class(base):
    """The subclass `Ulmfit{base.__name__}` of the optimizer class `base`, made once and
    registered as "tfrnn>Ulmfit{base.__name__}" (Adam's, AdamW's and SGD's on import)."""
    if base not in _CLASSES:
        cls = type(f"Ulmfit{base.__name__}", (UlmfitOptimizer, base), {"__module__": __name__})
        _CLASSES[base] = keras.saving.register_keras_serializable(package="tfrnn")(cls)
    return _CLASSES[base]


def unfrozen_at(epoch, n_groups, gradual=True):
    """How many groups, from the top, train in epoch `epoch` (0-based): min(epoch + 1, n), or
    all of them if not `gradual`."""
    return min(epoch + 1, n_groups) if gradual else n_groups


def ulmfit_optimizer(optimizer):
    """The `UlmfitOptimizer` in `optimizer` (itself, or inside compile's LossScaleOptimizer).

    Raises:
        ValueError: there is none (the model was not compiled with `wrap_optimizer`'s optimizer).
    """
    while not isinstance(optimizer, UlmfitOptimizer):
        if not hasattr(optimizer, "inner_optimizer"):
            raise ValueError(
                f"{type(optimizer).__name__} is not an optimizer from tfrnn.training.ulmfit.wrap_optimizer"
            )
        optimizer = optimizer.inner_optimizer
    return optimizer


class GradualUnfreezing(keras.callbacks.Callback):
    """Sets which groups train at each epoch's start: the top min(epoch + 1, n) (ULMFiT: the head
    alone first, then one more group down each epoch), or all of them if the optimizer was
    wrapped with gradual=False.

    It writes the optimizer's `unfrozen_groups` only: no layer's `trainable` changes, so the
    compiled train step is not traced again. It derives from the epoch alone, so a fit that
    `BackupAndRestore` resumes trains the groups of the epoch it resumes at.
    """

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = ulmfit_optimizer(self.model.optimizer)
        plan = optimizer.ulmfit_plan
        optimizer.unfrozen_groups.assign(unfrozen_at(epoch, len(plan.groups), plan.gradual))


class _Plan:
    """The groups (variable paths), their rates and, while `update_step` runs for one variable,
    that update's `frozen` (bool tensor) and `step` (its group's count): a plain object, so
    Keras and TensorFlow track none of it."""

    def __init__(self, groups, factor, gradual):
        self.groups = groups
        self.factor = factor
        self.gradual = gradual
        self.scales = [factor ** -(len(groups) - 1 - g) for g in range(len(groups))]
        self.group_of = {}  # the optimizer's key of a variable -> its group (`build`)
        self.frozen = self.step = None

    def settings(self):
        return {"groups": self.groups, "factor": self.factor, "gradual": self.gradual}


class UlmfitOptimizer:
    """Mixin for a Keras optimizer: per-group rates and masked writes in `update_step`, where the
    gradient is already clipped, unscaled and summed over tf.distribute replicas."""

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        settings = config.pop("ulmfit")
        if settings["factor"] <= 0:
            raise ValueError(f"wrap_optimizer: factor={settings['factor']} must be positive")
        optimizer = super().from_config(config, custom_objects=custom_objects)
        optimizer.ulmfit_plan = _Plan(**settings)
        n = len(settings["groups"])
        start = keras.initializers.Constant(1 if settings["gradual"] else n)
        optimizer.unfrozen_groups = optimizer.add_variable(
            (), initializer=start, dtype="int32", aggregation="only_first_replica", name="unfrozen_groups"
        )
        optimizer.group_steps = optimizer.add_variable(
            (n,), initializer="zeros", dtype="int32", aggregation="only_first_replica", name="group_steps"
        )
        return optimizer

    def get_config(self):
        return {**super().get_config(), "ulmfit": self.ulmfit_plan.settings()}

    def build(self, var_list):
        if self.built:
            return
        plan = self.ulmfit_plan
        group_of = {path: g for g, group in enumerate(plan.groups) for path in group}
        paths = [v.path for v in var_list]
        unknown = [path for path in paths if path not in group_of]
        if unknown:
            raise ValueError(f"UlmfitOptimizer: trainable variables in no group: {unknown}")
        if len(set(paths)) != len(paths):
            raise ValueError(
                f"UlmfitOptimizer: variables share a path: {sorted({p for p in paths if paths.count(p) > 1})}"
            )
        super().build(var_list)
        plan.group_of = {self._var_key(v): group_of[v.path] for v in var_list}

    @property
    def iterations(self):
        plan = getattr(self, "ulmfit_plan", None)
        if plan is None or plan.step is None:
            return super().iterations
        return plan.step  # inside update_step: the updates the variable's group has had

    def update_step(self, gradient, variable, learning_rate):
        plan = self.ulmfit_plan
        group = plan.group_of[self._var_key(variable)]
        n = len(plan.groups)
        plan.frozen = ops.less(group, n - ops.convert_to_tensor(self.unfrozen_groups))
        plan.step = ops.take(ops.convert_to_tensor(self.group_steps), group)
        learning_rate = learning_rate * plan.scales[group]
        try:
            if self.weight_decay is not None and self._use_weight_decay(variable):
                rate = ops.cast(learning_rate, variable.dtype) * ops.cast(self.weight_decay, variable.dtype)
                value = ops.convert_to_tensor(variable)
                self.assign(variable, value - value * rate)
            super().update_step(gradient, variable, learning_rate)
        finally:
            plan.frozen = plan.step = None

    def _clip_gradients(self, grads):
        """Clips the gradients made dense (see the module's docstring)."""
        return super()._clip_gradients([_dense(gradient) for gradient in grads])

    def _apply_weight_decay(self, variables):
        """Nothing: `update_step` applies the decay, at the group's rate."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        super()._backend_update_step(grads, trainable_variables, learning_rate)
        n = len(self.ulmfit_plan.groups)
        training = ops.arange(n) >= n - ops.convert_to_tensor(self.unfrozen_groups)  # (n,)
        self.assign_add(self.group_steps, ops.cast(training, "int32"))

    # The writes of update_step, masked for a frozen group.
    def assign(self, variable, value):
        if self.ulmfit_plan.frozen is not None:
            value = ops.where(self.ulmfit_plan.frozen, ops.convert_to_tensor(variable), value)
        super().assign(variable, value)

    def assign_add(self, variable, value):
        if self.ulmfit_plan.frozen is not None:
            value = ops.where(self.ulmfit_plan.frozen, -0.0, value)  # x + -0.0 is x, bit for bit
        super().assign_add(variable, value)

    def assign_sub(self, variable, value):
        if self.ulmfit_plan.frozen is not None:
            value = ops.where(self.ulmfit_plan.frozen, 0.0, value)  # x - 0.0 is x, bit for bit
        super().assign_sub(variable, value)


def _dense(gradient):
    """A gradient as a dense tensor: TensorFlow's IndexedSlices with their duplicates summed."""
    if type(gradient).__name__ != "IndexedSlices":
        return gradient
    import tensorflow as tf  # only TensorFlow makes IndexedSlices

    return tf.convert_to_tensor(gradient)


_CLASSES = {}  # optimizer class -> its ULMFiT subclass
UlmfitAdam, UlmfitAdamW, UlmfitSGD = map(
    ulmfit_class, (keras.optimizers.Adam, keras.optimizers.AdamW, keras.optimizers.SGD)
)
