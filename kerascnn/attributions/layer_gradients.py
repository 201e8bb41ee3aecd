"""The gradient of each image's target logit with respect to a layer's maps, compiled once per
(model, layer, use): what Grad-CAM (kerascnn.attributions.gradients) and TCAV
(kerascnn.attributions.concepts) both read."""
from __future__ import annotations

import weakref

_LAYER_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def layer_gradient_fn(model, layer: str, finish, name: str):
    """A compiled (x, targets) -> finish(maps, d logit_target / d maps) for `layer` of the logits
    `model` (its output maps in float32, the gradient of each image's own target logit), made once per
    (model, layer, name): Grad-CAM's weighted maps, or TCAV's activations and gradients as they are."""
    import keras
    import tensorflow as tf

    from kerascnn.model.folding import path_tensors

    per_model = _LAYER_FNS.setdefault(model, {})
    if (layer, name) not in per_model:
        inner = keras.Model(model.inputs[0], [path_tensors(model, layer)[1], model.outputs[0]])

        @tf.function(reduce_retracing=True)
        def fn(x, targets):
            with tf.GradientTape() as tape:
                maps, logits = inner(x, training=False)
                maps = tf.cast(maps, tf.float32)
                chosen = tf.gather(tf.cast(logits, tf.float32), targets, batch_dims=1)
            # the images do not interact: the gradient of the sum is each image's own
            return finish(maps, tape.gradient(chosen, maps))
        per_model[(layer, name)] = fn
    return per_model[(layer, name)]
