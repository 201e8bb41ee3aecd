"""The occlusion experiment: positions, occluded copies, probabilities against a hand computation,
one batched model call, the JSON form, the experiment's run on a Subject, and the `occlude` command."""
import json

import numpy as np
import pytest

from kerascnn.errors import BadValue
from kerascnn.experiments import reference
from kerascnn.experiments import occlusion
from kerascnn.attributions import patches as method
from kerascnn.data.tasks import Pick
from tests.support import (assert_one_line_error, cli, hand_softmax, load_model, needs_mnist, needs_pretrained,
                           written)


@pytest.fixture(scope="module")
def linear_model():
    """flatten -> Dense(10) with known seeded weights: its logits can be computed by hand in NumPy."""
    import keras

    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.3, (784, 10)).astype(np.float32)
    bias = rng.normal(0, 0.1, 10).astype(np.float32)
    inputs = keras.Input((28, 28, 1))
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, logits)
    model.layers[-1].set_weights([weights, bias])
    return model, weights, bias


@pytest.fixture(scope="module")
def idx_subject(linear_model, idx_dir):
    """The linear model on the synthetic IDX digits (200 test images)."""
    from kerascnn.model.subject import Subject
    from kerascnn.data.tasks import Task

    return Subject(linear_model[0], Task(data_dir=str(idx_dir)))


def some_image(seed=0):
    return np.random.default_rng(seed).random((28, 28, 1)).astype(np.float32)


def idx_test_labels(idx_dir):
    """The test labels read straight from the IDX file (not through kerascnn's loader)."""
    raw = (idx_dir / "t10k-labels-idx1-ubyte").read_bytes()
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


# ---------------------------------------------------------------------------- positions
@pytest.mark.parametrize("patch, stride, expected", [
    (14, 7, [0, 7, 14]),
    (28, 1, [0]),
    (1, 1, list(range(28))),
    (10, 9, [0, 9, 18]),
    (14, 14, [0, 14]),
    (14, 5, [0, 5, 10]),      # 28 - 14 is no multiple of 5: stops at 10, no extra position at 14
    (28, 5, [0]),
    (5, 30, [0]),            # a stride longer than the image: one position
])
def test_offsets_along_one_axis(patch, stride, expected):
    assert method.offsets(28, patch, stride).tolist() == expected


@pytest.mark.parametrize("patch, stride, count", [(14, 7, 9), (28, 1, 1), (1, 1, 784), (10, 9, 9),
                                                  (14, 1, 225), (7, 7, 16), (14, 5, 9)])
def test_number_of_positions(patch, stride, count):
    rows, cols = method.patch_positions(28, 28, patch, stride)
    assert len(rows) == len(cols) == count


def test_positions_are_row_major_from_the_top_left():
    rows, cols = method.patch_positions(28, 28, 14, 7)
    assert rows.tolist() == [0, 0, 0, 7, 7, 7, 14, 14, 14]
    assert cols.tolist() == [0, 7, 14] * 3


def test_non_square_image_has_its_own_offsets_per_axis():
    rows, cols = method.patch_positions(20, 28, 10, 5)
    assert sorted(set(rows.tolist())) == [0, 5, 10]
    assert sorted(set(cols.tolist())) == [0, 5, 10, 15]


@pytest.mark.parametrize("patch, stride, fill, param, message", [
    (30, 7, 0.5, "patch", "30 is larger than the 28x28 image"),
    (29, 1, 0.5, "patch", "larger"),
    (0, 7, 0.5, "patch", "must be at least 1"),
    (14, 0, 0.5, "stride", "must be at least 1"),
    (14, -3, 0.5, "stride", "must be at least 1"),
    (14, 7, 1.5, "fill", "[0, 1]"),
    (14, 7, -0.1, "fill", "[0, 1]"),
    (14, 7, float("nan"), "fill", "[0, 1]"),
])
def test_bad_arguments_are_refused_before_any_work(patch, stride, fill, param, message):
    with pytest.raises(BadValue) as error:
        method.check_arguments(28, 28, patch, stride, fill)
    assert error.value.param == param and message in error.value.message
    with pytest.raises(BadValue) as error:
        method.occlude(None, some_image(), 3, patch=patch, stride=stride, fill=fill)  # no model touched
    assert error.value.param == param and message in error.value.message


def test_options_default_to_half_and_a_quarter_of_the_image_side():
    mnist = occlusion.Options().resolved((28, 28, 1))
    assert (mnist.patch, mnist.stride) == (14, 7)
    resolved = occlusion.Options().resolved((32, 48, 3))
    assert (resolved.patch, resolved.stride) == (16, 8)
    assert occlusion.Options(patch=5).resolved((28, 28, 1)).stride == 2
    with pytest.raises(BadValue, match="patch"):
        occlusion.Options(patch=33).resolved((32, 32, 3))


def test_occluded_images_change_only_the_patch():
    image = some_image()
    images, rows, cols = method.occluded_images(image, 10, 9, 0.25)
    assert images.shape == (9, 28, 28, 1) and images.dtype == np.float32
    for copy, r, c in zip(images, rows, cols):
        inside = np.zeros((28, 28, 1), bool)
        inside[r:r + 10, c:c + 10] = True
        assert np.all(copy[inside] == np.float32(0.25))
        assert np.array_equal(copy[~inside], image[~inside])
    assert np.array_equal(image, some_image())  # the original is untouched


def test_occluded_rgb_images_fill_every_channel():
    image = np.random.default_rng(1).random((12, 16, 3)).astype(np.float32)
    images, rows, cols = method.occluded_images(image, 6, 5, 0.75)
    assert images.shape == (len(rows), 12, 16, 3) and len(rows) == 2 * 3
    for copy, r, c in zip(images, rows, cols):
        assert np.all(copy[r:r + 6, c:c + 6, :] == np.float32(0.75))
        outside = np.ones((12, 16), bool)
        outside[r:r + 6, c:c + 6] = False
        assert np.array_equal(copy[outside], image[outside])


# ---------------------------------------------------------------------------- probabilities
def test_probabilities_equal_a_hand_computation(linear_model):
    model, weights, bias = linear_model
    image = some_image(1)
    result = method.occlude(model, image, label=3, patch=14, stride=7, fill=0.5)
    # Build the nine occluded images by hand and run the linear model in NumPy.
    expected = []
    for r in (0, 7, 14):
        for c in (0, 7, 14):
            copy = image.copy()
            copy[r:r + 14, c:c + 14, 0] = 0.5
            expected.append(hand_softmax(copy.reshape(-1).astype(np.float64) @ weights + bias))
    expected = np.array(expected)
    assert result.count == 9
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(result.prob_true, expected[:, 3], atol=1e-5)
    assert result.pred.tolist() == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(result.prob_pred, expected.max(axis=1), atol=1e-5)
    clean = hand_softmax(image.reshape(-1).astype(np.float64) @ weights + bias)
    np.testing.assert_allclose(result.clean_probabilities, clean, atol=1e-5)
    assert result.clean_pred == int(clean.argmax())
    assert result.clean_prob_true == pytest.approx(clean[3], abs=1e-5)


def test_probabilities_match_the_model_itself(tiny_model):
    image = some_image(2)
    result = method.occlude(tiny_model, image, label=5, patch=10, stride=9, fill=0.0)
    images, _, _ = method.occluded_images(image, 10, 9, 0.0)
    logits = tiny_model(images, training=False).numpy()
    np.testing.assert_allclose(result.probabilities, hand_softmax(logits.astype(np.float64)), atol=1e-5)


def test_copies_go_through_the_model_in_batches_the_memory_budget_allows(linear_model, idx_subject, monkeypatch):
    from kerascnn.model import batching

    calls = []
    real = method.predict_logits

    def counting(model, images, batch_size=None):
        calls.append(len(images))
        return real(model, images, batch_size)

    monkeypatch.setattr(method, "predict_logits", counting)
    method.occlude(linear_model[0], some_image(), 0, patch=1, stride=1)  # 784 copies
    assert sorted(calls) == [1, 784]  # the clean image, then every copy in one call: a small model
    calls.clear()
    per_image = batching.activations_per_image(linear_model[0]) * 4
    monkeypatch.setenv("KERASCNN_BATCH_MB", str(100 * per_image / (1 << 20)))  # room for 100 images
    result = method.occlude(linear_model[0], some_image(), 0, patch=1, stride=1)
    assert calls == [*[100] * 7, 84, 1] and len(result.probabilities) == 784
    calls.clear()
    monkeypatch.delenv("KERASCNN_BATCH_MB")
    occlusion.run(idx_subject, occlusion.Options(Pick(index=0), patch=14, stride=7, map=True))
    assert calls == [9, 1, 225, 1]  # the 9 positions and the clean image, then the stride-1 map


def test_without_a_label_the_clean_prediction_is_followed(linear_model):
    result = method.occlude(linear_model[0], some_image(3))
    assert result.label == result.clean_pred
    assert result.label_source == "clean prediction"
    assert result.clean_prob_true == pytest.approx(result.clean_probabilities.max())
    with pytest.raises(BadValue, match="0-9") as error:
        method.occlude(linear_model[0], some_image(3), 10)
    assert error.value.param == "label"


def test_json_form(linear_model):
    result = method.occlude(linear_model[0], some_image(), 7, index=42)
    d = json.loads(json.dumps(result.to_dict()))  # plain JSON types only
    assert {"index", "label", "patch", "stride", "fill", "clean", "positions"} <= set(d)
    assert (d["index"], d["label"], d["patch"], d["stride"], d["fill"]) == (42, 7, 14, 7, 0.5)
    assert set(d["clean"]) == {"pred", "prob_true"}
    assert len(d["positions"]) == 9
    assert set(d["positions"][0]) == {"row", "col", "prob_true", "pred", "prob_pred"}
    assert [(p["row"], p["col"]) for p in d["positions"]][:4] == [(0, 0), (0, 7), (0, 14), (7, 0)]
    assert d["positions"][1]["prob_true"] == pytest.approx(float(result.prob_true[1]))


def test_sensitivity_map_is_occlusion_with_stride_one(idx_subject, idx_dir):
    labels = idx_test_labels(idx_dir)
    index = int(np.flatnonzero(labels == 2)[0])
    result = occlusion.run(idx_subject, occlusion.Options(Pick(class_name="2"), patch=14, map=True))
    assert result.occlusion.index == index and result.occlusion.label == 2
    assert result.occlusion.label_source == "true label" and result.occlusion.stride == 7
    heat = result.heat
    assert heat.stride == 1 and heat.count == 225 and heat.prob_true_grid().shape == (15, 15)
    assert heat.label == 2
    np.testing.assert_allclose(heat.prob_true_grid()[::7, ::7].ravel(), result.occlusion.prob_true, atol=1e-6)
    d = json.loads(json.dumps(result.to_dict()))
    assert (d["map"]["rows"], d["map"]["cols"]) == (15, 15)
    np.testing.assert_allclose(d["map"]["prob_true"], heat.prob_true_grid(), atol=1e-6)
    assert d["class_name"] == "2" and d["image"] == f"test image {index} (2)"


def test_pixels_never_covered_when_the_stride_skips_the_edge(linear_model):
    model = linear_model[0]
    assert method.occlude(model, some_image(), 0, patch=14, stride=7).never_covered() == 0
    assert method.occlude(model, some_image(), 0, patch=14, stride=5).never_covered() == 28 * 28 - 24 * 24
    assert method.occlude(model, some_image(), 0, patch=10, stride=9).never_covered() == 0


def test_reference_tables():
    for digit in (7, 9):
        table = reference.occlusion_table(digit, 14, 7)
        assert len(table.prob_true) == len(table.pred) == 9
    assert reference.occlusion_table(7, 14, 7).pred[1] == 9       # a 7 hidden at the top reads as a 9
    assert reference.occlusion_table(9, 14, 7).pred[1] == 4
    assert reference.occlusion_table(3, 14, 7) is None
    assert reference.occlusion_table(7, 14, 5) is None
    assert reference.occlusion_table(None, 14, 7) is None


def test_the_reference_goes_with_the_first_test_seven_only(idx_subject, idx_dir):
    sevens = np.flatnonzero(idx_test_labels(idx_dir) == 7)
    first = occlusion.run(idx_subject, occlusion.Options(Pick(class_name=7)))
    assert first.occlusion.index == sevens[0] and first.reference is reference.occlusion_table(7, 14, 7)
    assert "ref P" in occlusion.table(first).header
    other = occlusion.run(idx_subject, occlusion.Options(Pick(index=int(sevens[1]))))
    assert other.reference is None and "ref P" not in occlusion.table(other).header
    coarse = occlusion.run(idx_subject, occlusion.Options(Pick(class_name=7), stride=5))
    assert coarse.reference is None


# ---------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    return load_model(tiny_model_path)


def run(*args):
    return cli(*args)


def test_help_says_how_positions_and_labels_work():
    result = run("occlude", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help text is wrapped
    for words in ("--patch", "--stride", "--fill", "--map", "--json", "row-major", "prediction",
                  "data source's order", "--label", "--class", "--digit", "--out"):
        assert words in text


@pytest.mark.parametrize("args, fragment", [
    (["--patch", 30], "--patch: 30 is larger than the 28x28 image"),
    (["--stride", 0], "--stride"),
    (["--patch", 0], "--patch"),
    (["--fill", 2], "--fill"),
])
def test_bad_patch_stride_fill_are_refused(args, fragment, idx_dir, tiny_model_path, tmp_path):
    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--digit", 7, *args,
                 "--out", tmp_path / "o")
    assert_one_line_error(result, fragment, exit_code=2)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--digit", 12], "--digit"),
    (["--index", -1], "--index"),
    (["--index", 10 ** 6], "--index: must be between 0 and 199"),
    (["--class", "zebra"], "--class: 'zebra' is not a class"),
    (["--class", 12], "--class"),
    ([], "choose exactly one image"),
    (["--digit", 3, "--index", 4], "choose exactly one image"),
    (["--class", 3, "--digit", 4], "choose exactly one image"),
    (["--digit", 3, "--label", 4], "--label is only for --image"),
])
def test_bad_image_choices_are_refused(args, fragment, idx_dir, tiny_model_path, tmp_path):
    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, *args, "--out", tmp_path / "o")
    assert_one_line_error(result, fragment, exit_code=2)
    assert not (tmp_path / "o").exists()


def test_unreadable_image_file_is_refused(tmp_path, idx_dir, tiny_model_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    assert_one_line_error(run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--image", bad,
                              "--out", tmp_path / "o"), "cannot read image")
    assert_one_line_error(run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--image",
                              tmp_path / "missing.png", "--out", tmp_path / "o"), "does not exist", exit_code=2)
    assert not (tmp_path / "o").exists()


def test_occlude_an_own_picture_with_map_and_json(tmp_path, idx_dir, tiny_model_path, digit_png):
    out = tmp_path / "figs" / "occ"
    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--image", digit_png, "--map",
                 "--json", "--out", out)
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)  # the JSON alone on stdout; file messages on stderr
    assert d["index"] is None and d["label_source"] == "clean prediction"
    assert d["label"] == d["clean"]["pred"] and len(d["positions"]) == 9
    assert d["map"]["rows"] == d["map"]["cols"] == 15
    assert written(out) == {"occlusion.png", "occlusion_map.png", "result.json"}
    for path in (out / "occlusion.png", out / "occlusion_map.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "result.json").read_text()) == d
    assert f"wrote {out}/" in result.stderr and "occlusion_map.png" in result.stderr


def test_label_follows_a_class_of_an_own_picture(tmp_path, idx_dir, tiny_model_path, digit_png):
    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--image", digit_png,
                 "--label", 3, "--json", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["label"] == 3 and d["label_source"] == "given label"


def test_occlude_prints_an_aligned_table_with_the_reference(idx_dir, tiny_model_path, tmp_path):
    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--digit", 7,
                 "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["pos", "row", "col"])
    assert set(lines[header + 1]) == {"-"}
    rows = lines[header + 2:header + 11]
    assert [r.split()[:3] for r in rows[:2]] == [["1", "0", "0"], ["2", "0", "7"]]
    assert len({len(r.rstrip("*").rstrip()) for r in rows}) == 1  # aligned (a mark may end a line)
    assert "ref P" in lines[header] and "0.1734" in rows[1]
    labels = idx_test_labels(idx_dir)
    first_seven = int(np.flatnonzero(labels == 7)[0])
    assert f"test image {first_seven} (7)" in result.output
    # --class 7 is the same image as --digit 7.
    same = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--class", 7,
               "--out", tmp_path / "o")
    assert same.exit_code == 0 and same.output.splitlines()[header + 2:header + 11] == rows
    # The reference is for the first test 7: another 7, named by --index, gets none.
    second_seven = int(np.flatnonzero(labels == 7)[1])
    other = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--index", second_seven,
                "--out", tmp_path / "o")
    assert other.exit_code == 0 and "ref P" not in other.output


@pytest.fixture
def digit_png(tmp_path):
    """A dark '7' drawn on a light background, 90 x 120 pixels, as a user's photo might be."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (90, 120), "white")
    ImageDraw.Draw(picture).line([(15, 20), (75, 20), (40, 110)], fill="black", width=9)
    path = tmp_path / "seven.png"
    picture.save(path)
    return path


@needs_mnist
@needs_pretrained
def test_pretrained_model_on_the_first_test_seven(tmp_path):
    result = run("occlude", "--digit", 7, "--json", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["label"] == 7 and d["clean"]["pred"] == 7 and d["clean"]["prob_true"] > 0.9
    assert len(d["positions"]) == 9
    # Covering a corner that holds no stroke leaves a trained model sure of itself.
    assert d["positions"][0]["pred"] == 7


def test_the_map_of_a_large_image_keeps_64_positions_a_side():
    """Stride 1 while the map has at most 64 positions a side; above, the smallest stride that keeps it
    so, and each position's P(label) is still the copy's own."""
    import keras

    assert method.map_stride_for((28, 28, 1), 14) == 1 and method.map_stride_for((77, 77, 3), 14) == 1
    assert method.map_stride_for((78, 78, 3), 14) == 2 and method.map_stride_for((224, 224, 3), 112) == 2
    inputs = keras.Input((100, 90, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.AveragePooling2D(10)(inputs))))
    image = np.random.default_rng(0).random((100, 90, 3)).astype(np.float32)
    options = occlusion.Options(patch=20).resolved(image.shape)
    assert options.map_stride == 2
    heat = method.occlude(model, image, 0, patch=20, stride=options.map_stride)
    assert heat.grid_shape == (41, 36) and max(heat.grid_shape) <= method.MAP_SIDE
    p = 36 * 10 + 7  # row 10, column 7 of the 41 x 36 grid (row-major): top-left pixel (20, 14)
    assert (heat.rows[p], heat.cols[p]) == (20, 14)
    copy = image.copy()
    copy[20:40, 14:34] = 0.5
    np.testing.assert_allclose(heat.probabilities[p], hand_softmax(np.asarray(model(copy[None]), np.float64))[0],
                               atol=1e-5)
