"""Training: the recipe (config), `fit`, how the model is compiled, callbacks, adversarial training,
precision, devices and the run folders."""
