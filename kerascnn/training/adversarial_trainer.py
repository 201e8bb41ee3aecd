"""AdversarialTrainer: the Keras model that trains a classifier on attacked batches (the recipe and
why: training.adversarial). Registered with Keras, so that a resume checkpoint loads anywhere."""
from __future__ import annotations

import keras
import tensorflow as tf

from kerascnn.attacks.projected_gradient import pgd_images


@keras.saving.register_keras_serializable(package="kerascnn")
class AdversarialTrainer(keras.Model):
    """Trains `classifier` on PGD (or FGSM) images made inside each compiled training step
    (kerascnn.training.adversarial: the recipe and why). Calling it is calling the classifier, so validation
    and evaluation see clean images; its only weights are the classifier's.

    recipe: AdversarialRecipe.to_dict(); ramp_steps: training steps over which eps grows from 0;
    seed: with the optimizer's step count, seeds each batch's random start (a resumed run draws the
    starts an unbroken one would).
    """

    def __init__(self, classifier, recipe: dict, ramp_steps: int = 0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.recipe = dict(recipe)
        self.ramp_steps = int(ramp_steps)
        self.seed = int(seed)

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def current_eps(self):
        """eps of this training step: recipe eps, scaled by the ramp over the first ramp_steps steps."""
        eps = tf.constant(self.recipe["eps"], tf.float32)
        if not self.ramp_steps:
            return eps
        done = tf.cast(self.optimizer.iterations, tf.float32)
        return eps * tf.minimum(1.0, (done + 1.0) / float(self.ramp_steps))

    def attacked(self, x, y):

        eps = self.current_eps()
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
        images, _ = pgd_images(self.classifier, tf.cast(x, tf.float32), y, eps, eps * self.recipe["step_fraction"],
                               self.recipe["steps"], self.recipe["norm"], rand_init=True, seed=seed,
                               stop_when_fooled=False)
        return tf.stop_gradient(images)

    def train_step(self, data):
        x, y = data[0], data[1]
        return super().train_step((self.attacked(x, y), y))

    def get_config(self):
        return {"classifier": keras.saving.serialize_keras_object(self.classifier), "recipe": self.recipe,
                "ramp_steps": self.ramp_steps, "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        classifier = keras.saving.deserialize_keras_object(config.pop("classifier"))
        return cls(classifier, **config)
