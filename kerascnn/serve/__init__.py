"""`kerascnn serve`: a live page for any Keras classifier (predictions while you draw, activation maps,
explanations, attacks, corruptions, certification, models side by side) and the JSON API behind it.

    >>> from kerascnn.serve import build, create_app
    >>> app = create_app(build([model_a, model_b], data=(x_test, y_test)))   # uvicorn.run(app)

The handlers call kerascnn's public API; this package picks images and encodes answers. Starlette
and uvicorn are imported here only, so `import kerascnn` stays light.
"""
from __future__ import annotations


def build(models=(None,), data=None, *, input_range=None, preprocess=None, max_jobs: int | None = None):
    """A Server for `models` (keras.Models, .keras files, run folders or Subjects; None: the shipped
    cnn) on `data` (see kerascnn.api.inputs.as_task; None: MNIST), each model's functions traced and
    warmed once here."""
    from kerascnn.api.inputs import subject
    from kerascnn.serve.app import Server
    from kerascnn.serve.served import serve_model, unique_names

    subjects = [subject(m, None if _is_subject(m) else data, input_range=None if _is_subject(m) else input_range,
                        preprocess=None if _is_subject(m) else preprocess) for m in (models or [None])]
    served = [serve_model(name, s, domain_args(s)) for name, s in zip(unique_names(subjects), subjects)]
    return Server(served, max_jobs)


def domain_args(subject) -> dict:
    """input_range= / preprocess= for kc.attacks and kc.attributions, where the user gave the domain
    (else they read it off the model, as the Subject did)."""
    domain = subject.domain
    if not domain.given_by_user:
        return {}
    return {"preprocess": domain.preprocess} if domain.preprocess else {"input_range": (domain.low, domain.high)}


def _is_subject(model) -> bool:
    from kerascnn.model.subject import Subject

    return isinstance(model, Subject)


def create_app(server):
    """The Starlette app of a Server (kerascnn.serve.app)."""
    from kerascnn.serve.app import create_app as make

    return make(server)
