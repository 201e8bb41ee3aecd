"""`kerascnn serve`: a live page for any Keras classifier (predictions while you draw, activation maps,
explanations, attacks, corruptions, certification, models side by side) and the JSON API behind it.

    >>> from kerascnn.serve import build, create_app
    >>> app = create_app(build([model_a, model_b], data=(x_test, y_test)))   # uvicorn.run(app)

The handlers call kerascnn's public API; this package picks images and encodes answers. Starlette
and uvicorn are imported here only, so `import kerascnn` stays light.

The JSON API (what the page calls; scripts may call it too). A POST body is a JSON object with the
image, `"index": i` (test image i) or `"image": "<base64 PNG or JPEG, or a data: URL>"` (made the
model's size and channels; MNIST-shaped tasks frame it like MNIST's digits), `"model": NAME` where
several are served (default: the first), and the options below. Answers are JSON; pictures in them
are base64 PNGs, `input` the exact pixels the model received; `probabilities` one per class.

    GET  /api/models        {"models": [{name, input_shape, classes, dataset, test_accuracy, layers}]}
    GET  /api/images        ?kind=class&class=7 | kind=misclassified | kind=least_confident, &limit, &model
    POST /api/predict       -> probabilities, predicted, label (the true class, where known), input
    POST /api/activations   layer (one name, or "all") -> every spatial layer's mean map; its channels' maps
    POST /api/explain       method (saliency, gradcam, smoothgrad, integrated_gradients, occlusion),
                            target (class; default the predicted one) -> map, range, signed
    POST /api/attack        attack "fgsm" (answered at once), eps, norm (linf, l2), target -> adversarial,
                            perturbation, probabilities; attack "pgd", "apgd", "minimal" (steps), or
                            "curve": true with eps_max -> 202 and a job
    POST /api/curve         FGSM at 16 radii from 0 to eps_max -> eps, probabilities per radius
    POST /api/corrupt       corruption (MNIST-C's or ImageNet-C's names), severity 0-5 -> image, probabilities
    POST /api/certify       sigma, n -> 202 and a job: radius (L2), abstain, p_lower, counts
    POST /api/kernel        layer, channel -> kernel, feature (what excites the filter most), computed once
    GET  /api/jobs/{id}     state (queued, running, done, cancelled, failed), progress 0-1, result
    DELETE /api/jobs/{id}   cancel

    curl -s localhost:8000/api/predict -d '{"index": 0}'
    curl -s localhost:8000/api/attack -d '{"index": 0, "attack": "fgsm", "eps": 0.12}'

Refusals are {"error": "..."} with 400 (a malformed request), 404, 405, 413 (a body over 6 MB or a
picture over 2048 x 2048) or 429 (more than 3 jobs, or 32 requests waiting).
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


def create_app(server, hosts: list[str] | None = None):
    """The Starlette app of a Server (kerascnn.serve.app); `hosts`: the Host headers it answers (None: any)."""
    from kerascnn.serve.app import create_app as make

    return make(server, hosts)
