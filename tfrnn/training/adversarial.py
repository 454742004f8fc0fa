"""Adversarial training on the token embeddings (`train.adversarial`): FGM, PGD and VAT.

One train step serves every tfrnn classifier (RNN, feed-forward, BERT, PEFT runs): it perturbs
the output of the model's token embedding layer (`embedding_layer`) and leaves the model itself
unchanged, so the saved model, its export and its predictions are those of the plain model.

- FGM (Miyato et al. 2017): r = epsilon * g / ||g||, g the gradient of the loss with respect to
  the embeddings; the loss is (clean + weight * loss(embeddings + r)) / (1 + weight): Miyato's
  sum, divided so that the learning rate keeps its meaning and epsilon -> 0 is plain training.
  The gradient g comes from the clean loss's own backward pass: two forward and two backward
  passes a step.
- PGD (Madry et al. 2018): `steps` gradient-sign-free steps of 2.5 * epsilon / steps along the
  normalised gradient from r = 0, each projected back into the epsilon ball; then as FGM.
- VAT (Miyato et al. 2018): r = epsilon * g / ||g||, g the gradient of KL(p || p(x + d)) at a
  random d of norm xi (one power iteration); the loss is clean + weight * KL(p || p(x + r)), p
  the clean predictions held fixed. It needs no labels: batches of unlabelled text
  (`train.adversarial.unlabelled`) add their KL term alone (semi-supervised).

Norms are per example, over all its tokens; padding gets no gradient, so it stays unperturbed.
The perturbations are computed once, in `keras.ops`; the gradients come from `tf.GradientTape`
on TensorFlow (per replica under a tf.distribute strategy) and from `jax.value_and_grad` on JAX
(Keras' stateless train step, whose state the step threads through every pass). Mixed precision:
the optimizer's loss scaling applies to every term.
"""

import contextlib

import keras
import tensorflow as tf

from tfrnn.errors import ConfigError

# PGD's step size, as a multiple of epsilon / steps (Madry et al.'s rule of thumb).
PGD_STEP_FACTOR = 2.5


# The backends the step runs on.
BACKENDS = ("tensorflow", "jax")


def check_adversarial(adversarial):
    """Refuses `train.adversarial` where its train step cannot run (before anything is written).

    Args:
        adversarial: tfrnn.config.AdversarialConfig.

    Raises:
        ConfigError: the backend is neither TensorFlow nor JAX.
    """
    if adversarial.method is not None and keras.backend.backend() not in BACKENDS:
        raise ConfigError(
            f"train.adversarial.method={adversarial.method}: needs KERAS_BACKEND=tensorflow or jax "
            f"(this is {keras.backend.backend()})",
            "train.adversarial.method",
        )


def embedding_layer(model):
    """The layer whose output the step perturbs: a BERT's token embedding, else the layer named
    "embedding" (RNN and feed-forward classifiers)."""
    backbone = getattr(model, "backbone", None)
    if backbone is not None:
        return backbone.token_embedding
    return model.get_layer("embedding")


@contextlib.contextmanager
def shifted_output(layer, shift):
    """Inside the block, `layer`'s output is its output plus `shift` (same shape). The layer's
    mask is computed from its inputs, so masking downstream is unchanged."""
    name = "quantized_call" if getattr(layer, "quantization_mode", None) else "call"
    original = getattr(layer, name)

    def call(*args, **kwargs):
        output = original(*args, **kwargs)
        return output + keras.ops.cast(shift, output.dtype)

    setattr(layer, name, call)  # an instance attribute hides the class's method
    try:
        yield
    finally:
        delattr(layer, name)


def _token_ids(x):
    return x["token_ids"] if isinstance(x, dict) else x  # (batch, time)


def _zeros(x, layer):
    """A zero perturbation of the embeddings' shape `(batch, time, dim)`, float32."""
    batch, time = keras.ops.shape(_token_ids(x))
    return keras.ops.zeros((batch, time, layer.embeddings.shape[-1]), "float32")


def _norm(g):
    return keras.ops.sqrt(keras.ops.sum(keras.ops.square(g), axis=(1, 2), keepdims=True))  # (batch, 1, 1)


def normalized(g, norm):
    """`g` scaled to L2 norm `norm` per example (over time and dimensions).

    Args:
        g: tensor `(batch, time, dim)`.
        norm: float.

    Returns:
        tensor `(batch, time, dim)`, float32.
    """
    g = keras.ops.cast(g, "float32")
    return norm * g / (_norm(g) + 1e-12)


def _project(r, epsilon):
    """`r` pulled back into the L2 ball of radius `epsilon` per example."""
    return r * keras.ops.minimum(1.0, epsilon / (_norm(r) + 1e-12))


def _kl(p_logits, q_logits, sample_weight=None):
    """Mean over the batch (weighted) of KL(softmax(p) || softmax(q)); `p` held fixed."""
    p_log = keras.ops.log_softmax(keras.ops.stop_gradient(keras.ops.cast(p_logits, "float32")))  # (batch, classes)
    q_log = keras.ops.log_softmax(keras.ops.cast(q_logits, "float32"))
    kl = keras.ops.sum(keras.ops.exp(p_log) * (p_log - q_log), axis=-1)  # (batch,)
    if sample_weight is None:
        return keras.ops.mean(kl)
    weight = keras.ops.cast(sample_weight, "float32")
    return keras.ops.sum(kl * weight) / keras.ops.maximum(keras.ops.sum(weight), 1e-12)


def _add(a, b):
    """The sum of two gradients of one variable (None: no gradient; TensorFlow's gradients of an
    embedding are sparse rows)."""
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):  # the rows of both, kept sparse
        return tf.IndexedSlices(tf.concat([a.values, b.values], 0), tf.concat([a.indices, b.indices], 0), a.dense_shape)
    if isinstance(a, tf.IndexedSlices) or isinstance(b, tf.IndexedSlices):
        return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)
    return a + b


def _replicas():
    """Replicas of a tf.distribute strategy (1 on JAX, whose distribution splits the batch itself)."""
    return tf.distribute.get_strategy().num_replicas_in_sync if keras.backend.backend() == "tensorflow" else 1


class AdversarialStep:
    """The train step of `train.adversarial` for `model` (set as `model.train_step`).

    Args:
        model: keras.Model. A compiled tfrnn classifier.
        adversarial: tfrnn.config.AdversarialConfig. The method and its settings.
        unlabelled: bool. Each batch is `((x, y[, sample_weight]), x_unlabelled)` (VAT only).
    """

    def __init__(self, model, adversarial, unlabelled=False):
        self.model = model
        self.config = adversarial
        self.unlabelled = unlabelled
        self.layer = embedding_layer(model)
        weight = adversarial.weight
        # FGM and PGD average the clean and perturbed losses; VAT adds its KL term.
        self.clean_share = 1.0 if adversarial.method == "vat" else 1.0 / (1.0 + weight)
        self.extra_share = weight if adversarial.method == "vat" else weight / (1.0 + weight)

    def _logits(self, x, shift):
        with shifted_output(self.layer, shift):
            return self.model(x, training=True)  # (batch, classes)

    def perturbation(self, direction, gradient_at):
        """The adversarial perturbation (FGM, PGD) from the clean loss's gradient `direction`.

        Args:
            direction: tensor `(batch, time, dim)`. The gradient of the loss at the embeddings.
            gradient_at: callable. r -> the loss's gradient at embeddings + r (PGD's steps).

        Returns:
            tensor `(batch, time, dim)`: norm epsilon (FGM) or at most epsilon (PGD) per example.
        """
        epsilon = self.config.epsilon
        if self.config.method == "fgm":
            return normalized(direction, epsilon)
        step = PGD_STEP_FACTOR * epsilon / self.config.steps
        r = _project(normalized(direction, step), epsilon)
        for _ in range(self.config.steps - 1):
            r = _project(r + normalized(gradient_at(r), step), epsilon)
        return r

    def virtual_perturbation(self, noise, kl_gradient_at):
        """VAT's perturbation: epsilon along the KL's gradient at a random `d` of norm xi (one
        power iteration).

        Args:
            noise: tensor `(batch, time, dim)`. Standard normal draws (d's direction).
            kl_gradient_at: callable. d -> the gradient of KL(p || p(embeddings + d)) at d.

        Returns:
            tensor `(batch, time, dim)` of norm epsilon per example.
        """
        return normalized(kl_gradient_at(normalized(noise, self.config.xi)), self.config.epsilon)

    def __call__(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_step(*args)
        return self._tensorflow_step(*args)

    def _split(self, data):
        unlabelled_x = None
        if self.unlabelled:
            data, unlabelled_x = data
        return (*keras.utils.unpack_x_y_sample_weight(data), unlabelled_x)

    # TensorFlow: gradient tapes, the model's variables updated in place.

    def _tf_vat_loss(self, x, clean_logits, sample_weight=None):
        def kl_gradient_at(d):
            with tf.GradientTape() as tape:
                tape.watch(d)
                kl = _kl(clean_logits, self._logits(x, d), sample_weight)
            return tape.gradient(kl, d)

        noise = tf.random.normal(tf.shape(_zeros(x, self.layer)))  # stateful: no variable under a strategy
        r = self.virtual_perturbation(noise, kl_gradient_at)
        return _kl(clean_logits, self._logits(x, tf.stop_gradient(r)), sample_weight)

    def _tf_adversarial_loss(self, x, y, sample_weight, direction):
        """The perturbed loss (FGM, PGD), unweighted, and its perturbation."""

        def gradient_at(r):
            with tf.GradientTape() as tape:
                tape.watch(r)
                loss = self.model.loss(y, self._logits(x, r), sample_weight)
            return tape.gradient(loss, r)

        r = tf.stop_gradient(self.perturbation(direction, gradient_at))
        return self.model.loss(y, self._logits(x, r), sample_weight), r

    def _tensorflow_step(self, data):
        model = self.model
        x, y, sample_weight, unlabelled_x = self._split(data)
        variables = model.trainable_variables
        zero = _zeros(x, self.layer)
        with tf.GradientTape() as tape:
            tape.watch(zero)
            logits = self._logits(x, zero)
            loss = model.compute_loss(x, y, logits, sample_weight, training=True)
            scaled = model.optimizer.scale_loss(self.clean_share * loss)
        *gradients, direction = tape.gradient(scaled, [*variables, zero])
        with tf.GradientTape() as tape:
            if self.config.method == "vat":
                extra = self._tf_vat_loss(x, logits, sample_weight)
                if unlabelled_x is not None:
                    unlabelled_logits = self._logits(unlabelled_x, _zeros(unlabelled_x, self.layer))
                    extra += self._tf_vat_loss(unlabelled_x, unlabelled_logits)
            else:
                extra, _ = self._tf_adversarial_loss(x, y, sample_weight, direction)
            scaled_extra = model.optimizer.scale_loss(self.extra_share * extra / _replicas())
        extra_gradients = tape.gradient(scaled_extra, variables)
        gradients = [_add(g, e) for g, e in zip(gradients, extra_gradients, strict=True)]
        model.optimizer.apply_gradients(zip(gradients, variables))
        # Keras' loss tracker (its `loss` log) reports the clean loss, comparable with val_loss.
        batch = tf.shape(_token_ids(x))[0]
        model._loss_tracker.update_state(loss * _replicas(), sample_weight=batch)
        return model.compute_metrics(x, y, logits, sample_weight=sample_weight)

    # JAX: Keras' stateless step; the state (dropout seeds) is threaded through every pass.

    def _jax_step(self, state, data):
        import jax

        model = self.model
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight, unlabelled_x = self._split(data)

        def logits_at(trainable, non_trainable, inputs, shift):
            with shifted_output(self.layer, shift):
                return model.stateless_call(trainable, non_trainable, inputs, training=True)

        def clean_loss(trainable, zero):
            with shifted_output(self.layer, zero):
                loss, aux = model.compute_loss_and_updates(
                    trainable,
                    non_trainable,
                    metrics_variables,
                    x,
                    y,
                    sample_weight,
                    training=True,
                    optimizer_variables=optimizer_variables,
                )
            return self.clean_share * loss, aux

        (_, aux), (gradients, direction) = jax.value_and_grad(clean_loss, argnums=(0, 1), has_aux=True)(
            trainable, _zeros(x, self.layer)
        )
        loss, logits, non_trainable, metrics_variables = aux
        key = jax.random.fold_in(jax.random.PRNGKey(0), optimizer_variables[self._iterations_index()])

        def vat_loss(trainable, non_trainable, inputs, clean_logits, weight, key):
            def kl_gradient_at(d):
                return jax.grad(lambda d: _kl(clean_logits, logits_at(trainable, non_trainable, inputs, d)[0], weight))(
                    d
                )

            noise = jax.random.normal(key, keras.ops.shape(_zeros(inputs, self.layer)))
            r = jax.lax.stop_gradient(self.virtual_perturbation(noise, kl_gradient_at))
            perturbed, non_trainable = logits_at(trainable, non_trainable, inputs, r)
            return _kl(clean_logits, perturbed, weight), non_trainable

        def extra_loss(trainable, non_trainable):
            if self.config.method == "vat":
                extra, non_trainable = vat_loss(trainable, non_trainable, x, logits, sample_weight, key)
                if unlabelled_x is not None:
                    clean, non_trainable = logits_at(
                        trainable, non_trainable, unlabelled_x, _zeros(unlabelled_x, self.layer)
                    )
                    more, non_trainable = vat_loss(
                        trainable, non_trainable, unlabelled_x, clean, None, jax.random.fold_in(key, 1)
                    )
                    extra += more
            else:

                def gradient_at(r):
                    return jax.grad(
                        lambda r: model.loss(y, logits_at(trainable, non_trainable, x, r)[0], sample_weight)
                    )(r)

                r = jax.lax.stop_gradient(self.perturbation(direction, gradient_at))
                perturbed, non_trainable = logits_at(trainable, non_trainable, x, r)
                extra = model.loss(y, perturbed, sample_weight)
            return self._jax_scaled(self.extra_share * extra, optimizer_variables), non_trainable

        extra_gradients, non_trainable = jax.grad(extra_loss, has_aux=True)(trainable, non_trainable)
        gradients = jax.tree_util.tree_map(lambda a, b: a + b, gradients, extra_gradients)
        trainable, optimizer_variables = model.optimizer.stateless_apply(optimizer_variables, gradients, trainable)
        logs, metrics_variables = model._update_metrics_variables(metrics_variables, loss, x, y, logits, sample_weight)
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    def _iterations_index(self):
        """Where the optimizer's step counter is among its variables (it seeds VAT's random start)."""
        paths = [variable.path for variable in self.model.optimizer.variables]
        return paths.index(self.model.optimizer.iterations.path)

    def _jax_scaled(self, loss, optimizer_variables):
        """`optimizer.scale_loss` in Keras' stateless scope (a LossScaleOptimizer's scale)."""
        mapping = list(zip(self.model.optimizer.variables, optimizer_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            return self.model.optimizer.scale_loss(loss)


def enable_adversarial(model, adversarial, unlabelled=False):
    """Makes `model.fit` train adversarially: `model.train_step` becomes an `AdversarialStep`.

    Args:
        model: keras.Model. A compiled tfrnn classifier.
        adversarial: tfrnn.config.AdversarialConfig. With `method` set.
        unlabelled: bool. The training data's batches carry unlabelled inputs too (VAT).
    """
    model.train_step = AdversarialStep(model, adversarial, unlabelled)
