"""The model studied: the Subject (a Keras classifier, its task and its input domain), logits and
evaluation, the assignment's network, batch sizes that fit the model."""
