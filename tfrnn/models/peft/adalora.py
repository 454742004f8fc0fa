"""AdaLoRA (Zhang et al. 2023, "Adaptive Budget Allocation for Parameter-Efficient Fine-Tuning").

Each target layer (the attention's query and value by default) gets W + (alpha / init_rank) P
diag(E) Q on its kernel seen as a matrix (fan_in, fan_out): P (fan_in, init_rank) and Q
(init_rank, fan_out) start small and random (std 0.02), the "singular values" E start at zero,
so the model is unchanged until it trains (alpha: `peft.alpha`, else init_rank, so the scale is
1; Hugging Face PEFT scales by lora_alpha / init_rank too). While training, the layer adds
orthogonality * (||P^T P - I||_F^2 + ||Q Q^T - I||_F^2) to the loss: the paper's R(P, Q), squared
Frobenius norms summed over the layers (PEFT's takes the unsquared norm, averaged over the
factors).

The optimizer (`wrap_optimizer`) allocates the rank budget inside the compiled train step:
at every step it smooths each factor entry's sensitivity I = |w g| into I_bar and its
uncertainty |I - I_bar| into U_bar (both with `peft.beta`, the paper's beta1 and beta2); at the
budget steps (`schedule`) it scores each triplet (P column i, E_i, Q row i) by
s(E_i) + mean s(P_:i) + mean s(Q_i:) with s = I_bar U_bar, and zeroes the E of all but the
`budget(step)` best triplets of all layers together. The budget falls from init_rank to `rank`
per layer on average; from the final phase on, the last mask stays fixed. `merge` folds the
updates into the kernels.
"""

import math

import keras
import numpy as np
from keras import ops

from tfrnn.models.peft.base import (
    RawVariables,
    adding_weights,
    checked_targets,
    kernel_split,
    restore_class,
    swap_class,
)

FACTORS = ("adalora_p", "adalora_e", "adalora_q")


class AdaLoraLayer(RawVariables):
    """Mixin for a Dense / EinsumDense: kernel W + scale P diag(E) Q, and the orthogonality
    regulariser added to the loss while training (`apply` sets the factors and settings)."""

    @property
    def kernel(self):
        kernel = ops.cast(self._kernel, self.compute_dtype)
        return ops.add(kernel, self.adalora_delta(self.compute_dtype))

    def adalora_delta(self, dtype):
        """The update P diag(E) Q, scaled, in the kernel's shape and `dtype`."""
        p = ops.cast(self.adalora_p, dtype)  # (fan_in, rank)
        e = ops.cast(self.adalora_e, dtype)  # (rank,)
        q = ops.cast(self.adalora_q, dtype)  # (rank, fan_out)
        delta = ops.matmul(p * e, q) * self.adalora_scale  # (fan_in, fan_out)
        return ops.reshape(delta, self._kernel.shape)

    def call(self, inputs, training=None):
        if training and self.adalora_orthogonality:
            self.add_loss(self.adalora_orthogonality * orthogonality(self.adalora_p, self.adalora_q))
        return super().call(inputs, training=training)


def orthogonality(p, q):
    """R(P, Q) = ||P^T P - I||_F^2 + ||Q Q^T - I||_F^2, in float32.

    Args:
        p: tensor (fan_in, rank). The left singular vectors.
        q: tensor (rank, fan_out). The right singular vectors.
    """
    p, q = ops.cast(p, "float32"), ops.cast(q, "float32")
    identity = ops.eye(p.shape[-1], dtype="float32")  # (rank, rank)
    left = ops.matmul(ops.transpose(p), p) - identity  # (rank, rank)
    right = ops.matmul(q, ops.transpose(q)) - identity  # (rank, rank)
    return ops.sum(ops.square(left)) + ops.sum(ops.square(right))


def apply(backbone, peft):
    """Adds the SVD-form updates to the target layers of a frozen encoder: only P, E and Q train.

    Args:
        backbone: keras_hub BertBackbone. Built; every layer frozen.
        peft: tfrnn.config.PeftConfig. init_rank, alpha, orthogonality, targets.

    Raises:
        ConfigError: a target that matches no layer, an init_rank larger than a target allows.
    """
    layers = checked_targets(backbone, peft.targets, peft.init_rank, "model.peft.init_rank")
    alpha = peft.init_rank if peft.alpha is None else peft.alpha
    for layer in layers:
        _add_factors(layer, peft.init_rank, alpha / peft.init_rank, peft.orthogonality)


def _add_factors(layer, rank, scale, weight):
    """Gives `layer` its factors P, E, Q (trainable; the kernel and bias stay frozen)."""
    fan_in, fan_out = (math.prod(shape) for shape in kernel_split(layer))
    layer.trainable = True  # first: it would unfreeze the kernel and bias again after
    layer._kernel.trainable = False
    if layer.bias is not None:
        layer.bias.trainable = False
    normal = keras.initializers.RandomNormal(stddev=0.02)
    with adding_weights(layer):
        layer.adalora_p = layer.add_weight(name="adalora_p", shape=(fan_in, rank), initializer=normal, autocast=False)
        layer.adalora_e = layer.add_weight(name="adalora_e", shape=(rank,), initializer="zeros", autocast=False)
        layer.adalora_q = layer.add_weight(name="adalora_q", shape=(rank, fan_out), initializer=normal, autocast=False)
    layer.adalora_scale = scale
    layer.adalora_orthogonality = weight
    swap_class(layer, AdaLoraLayer)


def adalora_layers(model):
    """The layers of `model` (a classifier or its encoder) that `apply` changed, in the order of
    the model's weights."""
    layers = model._flatten_layers(include_self=False)
    by_factor = {id(layer.adalora_p): layer for layer in layers if isinstance(layer, AdaLoraLayer)}
    return [by_factor[id(weight)] for weight in model.weights if id(weight) in by_factor]


def merge(backbone):
    """Folds every update into its kernel (W <- W + scale P diag(E) Q), drops the factors and
    gives the layers back their class: the encoder computes the same outputs as plain dense layers.

    Args:
        backbone: keras_hub BertBackbone. With AdaLoRA applied by `apply`.
    """
    for layer in adalora_layers(backbone):
        layer._kernel.assign(ops.add(layer._kernel, layer.adalora_delta(layer._kernel.dtype)))
        for name in FACTORS:
            layer._untrack_variable(getattr(layer, name))
            # Past Keras' __delattr__, which would gc.collect() for each variable (seconds per encoder).
            super(keras.layers.Layer, layer).__delattr__(name)
        restore_class(layer)
        layer.trainable = False


def final_ranks(model):
    """The rank each AdaLoRA layer kept (its nonzero E entries), and their total.

    Args:
        model: keras.Model. A classifier (or encoder) with AdaLoRA applied.

    Returns:
        dict: {layer path: int rank, ..., "total": int}.
    """
    ranks = {
        layer.path: int(np.count_nonzero(ops.convert_to_numpy(layer.adalora_e))) for layer in adalora_layers(model)
    }
    return {**ranks, "total": sum(ranks.values())}


def phases(peft, total_steps):
    """(start, end): pruning runs on steps start <= t < end; the ranks are fixed from step end on.

    start = round(warmup_fraction T); end = T - round(final_fraction T), at most T - 1 so the
    last step always has the final budget (and start at most end).
    """
    end = total_steps - max(round(peft.final_fraction * total_steps), 1)
    return min(round(peft.warmup_fraction * total_steps), end), end


def budget(step, peft, n_layers, total_steps):
    """The total rank of all AdaLoRA layers at optimizer step `step` (0-based).

    b_init = init_rank n for t < start; b_T + floor((b_init - b_T) (1 - (t - start) / (end - start))^3)
    for start <= t < end; b_T = rank n from end on (`phases`; n: the number of layers).

    Args:
        step: int. The optimizer step.
        peft: tfrnn.config.PeftConfig. rank, init_rank, warmup_fraction, final_fraction.
        n_layers: int. How many layers share the budget.
        total_steps: int. The training's optimizer steps (T).
    """
    start, end = phases(peft, total_steps)
    initial, final = peft.init_rank * n_layers, peft.rank * n_layers
    if step < start:
        return initial
    if step >= end:
        return final
    return final + math.floor((initial - final) * (1 - (step - start) / (end - start)) ** 3)


def schedule(peft, n_layers, total_steps):
    """The budget of every step and whether it re-allocates the ranks, for steps 0..T (T and
    after: as T).

    Returns:
        (budgets, reallocates): np.ndarray int32 (T + 1,) and bool (T + 1,). A step reallocates
        every `interval` steps from `start` while pruning, and at `end` (the final allocation).
    """
    start, end = phases(peft, total_steps)
    steps = np.arange(total_steps + 1)
    budgets = np.array([budget(int(t), peft, n_layers, total_steps) for t in steps], "int32")
    pruning = (steps >= start) & (steps < end) & ((steps - start) % peft.interval == 0)
    return budgets, pruning | (steps == end)


def wrap_optimizer(optimizer, model, peft, total_steps):
    """The same optimizer (class, config and weight-decay exclusions) that also allocates
    AdaLoRA's rank budget.

    Args:
        optimizer: keras.optimizers.Optimizer. Unbuilt, not a LossScaleOptimizer (compile adds one).
        model: keras.Model. The classifier, with AdaLoRA applied.
        peft: tfrnn.config.PeftConfig. rank, init_rank, warmup_fraction, final_fraction,
            interval, beta.
        total_steps: int. The optimizer steps of the whole training (T).

    Returns:
        An instance of a subclass of type(optimizer) (`AdaLoraOptimizer` first), to compile with.
        Its variables hold each factor's I_bar (`..._sensitivity`) and U_bar (`..._uncertainty`)
        and each layer's mask (`..._adalora_e_mask`), so they are saved and restored with its state.
    """
    layers = adalora_layers(model)
    if not layers:
        raise ValueError("wrap_optimizer: the model has no AdaLoRA layer (apply AdaLoRA first)")
    if total_steps < 1:
        raise ValueError(f"wrap_optimizer: total_steps={total_steps} must be positive")
    base = type(optimizer)
    wrapped = type(f"AdaLora{base.__name__}", (AdaLoraOptimizer, base), {}).from_config(optimizer.get_config())
    for name in ("_exclude_from_weight_decay", "_exclude_from_weight_decay_pattern"):  # not in the config
        if hasattr(optimizer, name):
            setattr(wrapped, name, getattr(optimizer, name))
    wrapped.adalora_plan = _Plan(layers, peft, total_steps)
    return wrapped


class _Plan:
    """What the optimizer allocates: the layers, the schedule and the smoothing (a plain object,
    so neither Keras nor TF tracks the model's layers as the optimizer's)."""

    def __init__(self, layers, peft, total_steps):
        self.layers = layers
        self.beta = peft.beta
        self.end = phases(peft, total_steps)[1]
        self.total_steps = total_steps
        self.budgets, self.reallocates = schedule(peft, len(layers), total_steps)

    def factors(self):
        return [getattr(layer, name) for layer in self.layers for name in FACTORS]


class AdaLoraOptimizer:
    """Mixin for a Keras optimizer: smooths the factors' importance in `update_step` (there the
    gradient is already summed over tf.distribute replicas) and masks E after each `apply`."""

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        factors = self.adalora_plan.factors()
        self._adalora_slots = {self._get_variable_index(v): i for i, v in enumerate(factors)}
        self._adalora_sensitivities = [self.add_variable_from_reference(v, "sensitivity") for v in factors]
        self._adalora_uncertainties = [self.add_variable_from_reference(v, "uncertainty") for v in factors]
        self._adalora_masks = [
            self.add_variable_from_reference(layer.adalora_e, "mask", initializer="ones")
            for layer in self.adalora_plan.layers
        ]

    def update_step(self, gradient, variable, learning_rate):
        slot = self._adalora_slots.get(self._get_variable_index(variable))
        if slot is not None:
            self._smooth_importance(slot, gradient, variable)
        super().update_step(gradient, variable, learning_rate)

    def _smooth_importance(self, slot, gradient, variable):
        """I_bar <- beta I_bar + (1 - beta) I; U_bar <- beta U_bar + (1 - beta) |I - I_bar| (the new I_bar)."""
        beta = self.adalora_plan.beta
        sensitivity, uncertainty = self._adalora_sensitivities[slot], self._adalora_uncertainties[slot]
        importance = ops.abs(ops.multiply(ops.convert_to_tensor(variable), gradient))  # the variable's shape
        smoothed = beta * ops.convert_to_tensor(sensitivity) + (1 - beta) * importance
        self.assign(sensitivity, smoothed)
        self.assign(
            uncertainty, beta * ops.convert_to_tensor(uncertainty) + (1 - beta) * ops.abs(importance - smoothed)
        )

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)
        if len(grads):
            self._allocate()

    def _allocate(self):
        """After step t: at a budget step, keeps the E of the budget(t) best triplets of all layers;
        from the final phase on, keeps masking E with the last allocation."""
        plan = self.adalora_plan
        step = ops.minimum(ops.cast(self.iterations, "int32") - 1, plan.total_steps)  # the step just taken
        reallocates = ops.take(ops.convert_to_tensor(plan.reallocates), step)
        budget = ops.take(ops.convert_to_tensor(plan.budgets), step)
        places = ops.argsort(ops.argsort(-self._scores()))  # (layers * rank,) 0 for the best triplet
        best = ops.cast(places < budget, "float32")  # (layers * rank,)
        last = ops.concatenate([ops.convert_to_tensor(mask) for mask in self._adalora_masks])  # (layers * rank,)
        kept = ops.where(reallocates, best, last)
        masking = ops.logical_or(reallocates, step >= plan.end)
        for layer, mask, keep in zip(plan.layers, self._adalora_masks, ops.split(kept, len(plan.layers))):
            self.assign(mask, keep)
            e = ops.convert_to_tensor(layer.adalora_e)  # (rank,)
            self.assign(layer.adalora_e, ops.where(masking, e * keep, e))

    def _scores(self):
        """Each triplet's S_i = s(E_i) + mean_j s(P_ji) + mean_j s(Q_ij), s = I_bar U_bar, layer by
        layer: (layers * rank,)."""
        s = [
            ops.convert_to_tensor(sensitivity) * ops.convert_to_tensor(uncertainty)
            for sensitivity, uncertainty in zip(self._adalora_sensitivities, self._adalora_uncertainties)
        ]
        return ops.concatenate(
            [e + ops.mean(p, axis=0) + ops.mean(q, axis=1) for p, e, q in zip(s[::3], s[1::3], s[2::3])]
        )
