"""Weights from a pretrained model into another built on the same layers (`init_from`)."""


def layer_weights(model, name):
    """The weights of `model`'s layer `name` that define it: a recurrent layer's cell's (not a
    stateful layer's carried states), any other layer's own.

    Args:
        model: keras.Model.
        name: str. A layer name.

    Returns:
        list of keras.Variable.
    """
    layer = model.get_layer(name)
    return getattr(layer, "cell", layer).weights


def copy_layer_weights(source, target, names):
    """Copies the weights of the layers `names` (or, for a name that is a model weight rather
    than a layer, that weight) from `source` into `target`.

    Args:
        source: keras.Model. The pretrained model.
        target: keras.Model. Built, with layers (or weights) of the same names and shapes.
        names: list of str.

    Raises:
        ValueError: a name missing from either model, or weights whose shapes differ.
    """
    for name in names:
        mine, theirs = _named(source, name), _named(target, name)
        if [tuple(w.shape) for w in mine] != [tuple(w.shape) for w in theirs]:
            shapes = [tuple(w.shape) for w in mine], [tuple(w.shape) for w in theirs]
            raise ValueError(f"{name}: the weights' shapes differ, {shapes[0]} and {shapes[1]}")
        for weight, copy in zip(mine, theirs):
            copy.assign(weight.numpy())


def _named(model, name):
    try:
        return layer_weights(model, name)
    except ValueError:  # not a layer: a weight of the model itself (a tied output bias)
        found = [w for w in model.weights if w.path.split("/")[-1] == name]
        if not found:
            raise ValueError(f"{model.name} has no layer or weight named {name!r}") from None
        return found
