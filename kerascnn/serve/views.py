"""What each endpoint answers, as plain functions of (server, request body) -> JSON-ready dict.

The numbers come from kerascnn's public API (kc.attributions, kc.attacks, kc.filters, the Subject,
kerascnn.corrupt); these functions pick the image, call, and encode. They run in worker threads.
"""
from __future__ import annotations

import numpy as np

from kerascnn.serve.codec import RequestError, choice, class_number, colour, map_png, number, png

METHODS = ("saliency", "gradcam", "smoothgrad", "integrated_gradients", "occlusion")
#: Images listed per GET /api/images at most; maps in one answer of /api/activations with layer "all".
MAX_LIST = 200
MAX_MAPS = 4096
#: The side of a test image's thumbnail at most, in pixels.
THUMBNAIL = 64


# ---------------------------------------------------------------------------- the input
def served_of(server, body: dict):
    """The model a request names ("model"; the first served when absent)."""
    name = body.get("model")
    if name is None:
        return server.models[0]
    for served in server.models:
        if served.name == name:
            return served
    raise RequestError(f"model: {str(name)[:60]!r} is not served; choose from {', '.join(server.names())}")


def image_of(served, body: dict) -> tuple[np.ndarray, int | None, int | None]:
    """(pixels (H, W, C) in [0, 1], true class or None, test index or None) of `index` or `image`."""
    has_index, has_image = body.get("index") is not None, body.get("image") is not None
    if has_index == has_image:
        raise RequestError("give exactly one of index (a test image number) and image (a base64 PNG)")
    if has_index:
        x, y = served.subject.task.test()
        i = number(body, "index", low=0, high=len(x) - 1, whole=True)
        return x[i], int(y[i]), i
    from kerascnn.serve.codec import decode_picture

    label = class_number(body, "label", served.subject.class_names)
    return decode_picture(body["image"], served.subject.input_shape, served.subject.task.mnist_shaped), label, None


def domain_args(served) -> dict:
    return served.domain_args


def prediction(served, pixels: np.ndarray, label=None) -> dict:
    """The class probabilities of one image, its predicted class and the pixels the model received."""
    probs = served.probabilities(pixels[None])
    return {"model": served.name, "probabilities": [float(p) for p in probs[0]], "predicted": int(probs[0].argmax()),
            "label": label, "input": png(pixels)}


# ---------------------------------------------------------------------------- endpoints
def predict(server, body: dict) -> dict:
    served = served_of(server, body)
    pixels, label, index = image_of(served, body)
    return prediction(served, pixels, label) | {"index": index}


def activations(server, body: dict) -> dict:
    """Every spatial layer's maps: each layer's mean map, and every channel of `layer` ("all": of all)."""
    served = served_of(server, body)
    pixels, label, index = image_of(served, body)
    layer = body.get("layer")
    if layer is not None and layer != "all" and layer not in served.layers:
        raise RequestError(f"layer: {str(layer)[:60]!r} has no maps; choose from {', '.join(served.layers)}")
    if layer == "all" and sum(served.describe_layer(n)[-1] for n in served.layers) > MAX_MAPS:
        raise RequestError(f"layer: all of {served.name}'s maps are more than {MAX_MAPS:,}; ask for one layer")
    probs, maps = served.run(pixels[None])
    layers = []
    for name, values in maps.items():
        m = values[0]
        signed = bool(m.min() < 0)
        scale = float(np.abs(m).max()) or 1.0
        entry = {"name": name, "shape": list(m.shape), "scale": scale, "mean": map_png(m.mean(axis=-1), signed)}
        if layer in ("all", name):
            coloured = colour(np.moveaxis(m, -1, 0), signed, scale)  # (c, h, w, 4): one colour-map call
            entry["maps"] = [png(c) for c in coloured]
            entry["channel_max"] = [float(v) for v in m.max(axis=(0, 1))]
            if body.get("values"):
                entry["values"] = m.tolist()
        layers.append(entry)
    return {"model": served.name, "index": index, "label": label, "probabilities": [float(p) for p in probs[0]],
            "predicted": int(probs[0].argmax()), "input": png(pixels), "layers": layers}


def explain(server, body: dict) -> dict:
    """One attribution map of kc.attributions for the target class (None: the predicted one)."""
    import kerascnn as kc

    served = served_of(server, body)
    pixels, label, index = image_of(served, body)
    method = choice(body, "method", METHODS, "saliency")
    target = class_number(body, "target", served.subject.class_names)
    if target is None:
        target = int(served.probabilities(pixels[None])[0].argmax())
    options = {}
    if method == "smoothgrad":
        options = {"samples": number(body, "samples", 32, 1, 128, True), "noise": number(body, "noise", 0.15, 0, 1)}
    elif method == "integrated_gradients":
        options = {"steps": number(body, "steps", 64, 1, 256, True)}
    elif method == "occlusion":
        side = min(served.subject.input_shape[:2])
        options = {"patch": number(body, "patch", None, 1, side, True),
                   "stride": number(body, "stride", None, 1, side, True)}
    elif method == "gradcam" and body.get("layer") is not None:
        options = {"layer": choice(body, "layer", served.subject.conv_layers() or served.layers)}
    function = getattr(kc.attributions, method)
    values = function(served.subject.model, pixels[None], np.array([target]), **options, **domain_args(served))[0]
    signed = method != "gradcam"
    out = {"model": served.name, "index": index, "label": label, "method": method, "target": target,
           "map": map_png(values, signed), "overlay": map_png(values, signed, see_through=True), "input": png(pixels),
           "signed": signed,
           "range": [float(values.min()), float(values.max())]}
    if body.get("values"):
        out["values"] = values.tolist()
    return out


def images(server, params) -> dict:
    """Test images to pick from: the first of a class, the misclassified, or the least confident."""
    served = served_of(server, dict(params))
    kind = choice(dict(params), "kind", ("class", "misclassified", "least_confident"), "class")
    try:
        limit = min(MAX_LIST, max(1, int(params.get("limit", 24))))
    except ValueError:
        raise RequestError("limit: must be a whole number") from None
    probs, labels = served.test_probs, served.test_labels()
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    if kind == "class":
        names = served.subject.class_names
        given = params.get("class", names[0])
        given = int(given) if given not in names and given.isdecimal() and len(given) < 10 else given
        wanted = class_number({"class": given}, "class", names)
        order = np.flatnonzero(labels == wanted)
    elif kind == "misclassified":
        order = np.flatnonzero(predicted != labels)
    else:
        order = np.argsort(confidence, kind="stable")
    rows = [{"index": int(i), "label": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": float(confidence[i])} for i in order[:limit]]
    return {"model": served.name, "kind": kind, "count": int(len(order)), "images": rows}


def thumbnails(server, body: dict) -> dict:
    """Small PNGs of test images by index (for the picker)."""
    served = served_of(server, body)
    indices = body.get("indices")
    if not isinstance(indices, list) or len(indices) > MAX_LIST:
        raise RequestError(f"indices: must be a list of at most {MAX_LIST} test image numbers")
    x, _ = served.subject.task.test()
    out = {}
    for k in range(len(indices)):
        i = number({"index": indices[k]}, "index", low=0, high=len(x) - 1, whole=True)
        out[str(i)] = png(x[i], max_side=THUMBNAIL)
    return {"images": out}


def kernel(server, body: dict) -> dict:
    """A convolution filter's kernel (input channels summed) and its feature visualisation, from
    kc.filters, computed once per filter and kept."""
    import kerascnn as kc

    served = served_of(server, body)
    convs = served.subject.conv_layers()
    if not convs:
        raise RequestError(f"{served.name} has no convolution layers")
    layer = choice(body, "layer", convs, convs[0])
    width = int(served.subject.model.get_layer(layer).kernel.shape[-1])
    channel = number(body, "channel", 0, 0, width - 1, True)
    key = ("kernel", layer, channel)
    with served.lock:
        if key not in served.cache:
            weights = kc.filters(served.subject, layer=layer, filter=channel).weights[0]
            found = kc.filters(served.subject, layer=layer, filter=channel, maximize=True).images[0]
            picture = (found - found.min()) / (float(found.max() - found.min()) or 1.0)
            kernel_map = weights.sum(axis=0)
            served.cache[key] = {"model": served.name, "layer": layer, "channel": channel,
                                 "kernel": map_png(kernel_map, True), "kernel_values": kernel_map.tolist(),
                                 "feature": png(picture)}
    return served.cache[key]
