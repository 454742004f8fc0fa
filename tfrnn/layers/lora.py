"""LoRA (Hu et al. 2021) for the recurrent cells' kernels, with the semantics of Keras' own
`Dense.enable_lora` (and `EinsumDense`, `Embedding`), so that a model mixing both behaves as one:

    W' = W + (lora_alpha / rank) * A @ B,   A `(in, rank)` he_uniform, B `(rank, out)` zeros

so an enabled layer starts with its outputs unchanged; A and B are float32 and trainable, W is
frozen. A saved layer stores W' in W's place and not the factors: `.keras` files load into
layers with or without LoRA, and the saved (and exported) model costs nothing extra at serving
time. Loading zeroes the factors, as Keras does.
"""

from keras import ops


class LoraKernels:
    """Mixin of a layer whose kernels (the attributes named in `lora_targets`) can take LoRA.

    The layer calls `init_lora(lora_rank, lora_alpha)` in `__init__`, `build_lora()` at the
    end of `build`, and reads its kernels through `effective(name)`.
    """

    lora_targets = ()

    def init_lora(self, lora_rank=None, lora_alpha=None):
        """Records LoRA settings given to the constructor (from a config): enabled once built."""
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else lora_rank
        self.lora_enabled = False
        self._lora = {}  # kernel name -> (A, B)

    def build_lora(self):
        """Enables LoRA at the end of `build` when the config asked for it (the layer's own
        weights exist then; Keras' Dense marks itself built at the same point)."""
        if self.lora_rank:
            self.built = True
            self.enable_lora(self.lora_rank, self.lora_alpha)

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """Freezes the target kernels and adds a trainable low-rank update to each.

        Args:
            rank: int. Rank of the update, 1 <= rank <= min(kernel's dimensions).
            lora_alpha: float or None. The update is scaled by lora_alpha / rank (None: rank).
            a_initializer: str or initializer. For A.
            b_initializer: str or initializer. For B (zeros: outputs unchanged at first).

        Raises:
            ValueError: not built, enabled already, or a rank out of range.
        """
        if not self.built:
            raise ValueError("Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError("lora is already enabled. This can only be done once per layer.")
        kernels = {name: getattr(self, name) for name in self.lora_targets}
        for name, kernel in kernels.items():
            if not isinstance(rank, int) or not 1 <= rank <= min(kernel.shape):
                raise ValueError(
                    f"lora rank={rank!r}: must be an integer in [1, {min(kernel.shape)}] for {name} {kernel.shape}"
                )
        self._tracker.unlock()
        for name, kernel in kernels.items():
            a = self.add_weight(
                name=f"{name}_lora_a", shape=(kernel.shape[0], rank), initializer=a_initializer, dtype="float32"
            )
            b = self.add_weight(
                name=f"{name}_lora_b", shape=(rank, kernel.shape[1]), initializer=b_initializer, dtype="float32"
            )
            kernel.trainable = False
            self._lora[name] = (a, b)
        self._tracker.lock()
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    def effective(self, name):
        """The kernel `name` with its update added: `(in, out)`."""
        kernel = getattr(self, name)
        if name not in self._lora:
            return kernel
        a, b = self._lora[name]
        return kernel + (self.lora_alpha / self.lora_rank) * ops.matmul(a, b)

    def merge_lora(self):
        """Folds each update into its kernel (W <- W + (alpha / rank) A B) and turns LoRA off, in
        place: the same outputs without the low-rank products (for exports). The factors stay
        in the layer, unused."""
        for name in self._lora:
            getattr(self, name).assign(self.effective(name))
        self._merged_factor_ids = {id(v) for pair in self._lora.values() for v in pair}
        self._lora = {}
        self.lora_enabled = False
        self.lora_rank = None

    def _base_variables(self):
        """The layer's own variables in creation order, without the LoRA factors."""
        factors = {id(v) for pair in self._lora.values() for v in pair}
        factors |= getattr(self, "_merged_factor_ids", set())
        return [v for v in self._trainable_variables + self._non_trainable_variables if id(v) not in factors]

    def save_own_variables(self, store):
        merged = {id(getattr(self, name)): self.effective(name) for name in self._lora}
        for i, variable in enumerate(self._base_variables()):
            store[str(i)] = ops.convert_to_numpy(merged.get(id(variable), variable))

    def load_own_variables(self, store):
        variables = self._base_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables, but received {len(store.keys())} "
                "variables during loading."
            )
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])
        for pair in self._lora.values():
            for factor in pair:
                factor.assign(ops.zeros(factor.shape))

    def lora_config(self):
        """The constructor arguments that re-enable LoRA when the layer is rebuilt."""
        return {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha} if self.lora_rank else {}
