"""The occlusion experiment: positions, occluded copies, probabilities against a hand computation,
one batched model call, the JSON form, and the `occlude` command."""
import json

import numpy as np
import pytest

from kerascnn import DEFAULT_MODEL, occlusion


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


def hand_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def some_image(seed=0):
    return np.random.default_rng(seed).random((28, 28, 1)).astype(np.float32)


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
    assert occlusion.offsets(28, patch, stride).tolist() == expected


@pytest.mark.parametrize("patch, stride, count", [(14, 7, 9), (28, 1, 1), (1, 1, 784), (10, 9, 9),
                                                  (14, 1, 225), (7, 7, 16), (14, 5, 9)])
def test_number_of_positions(patch, stride, count):
    rows, cols = occlusion.patch_positions(28, 28, patch, stride)
    assert len(rows) == len(cols) == count


def test_positions_are_row_major_from_the_top_left():
    rows, cols = occlusion.patch_positions(28, 28, 14, 7)
    assert rows.tolist() == [0, 0, 0, 7, 7, 7, 14, 14, 14]
    assert cols.tolist() == [0, 7, 14] * 3


def test_non_square_image_has_its_own_offsets_per_axis():
    rows, cols = occlusion.patch_positions(20, 28, 10, 5)
    assert sorted(set(rows.tolist())) == [0, 5, 10]
    assert sorted(set(cols.tolist())) == [0, 5, 10, 15]


@pytest.mark.parametrize("patch, stride, fill, message", [
    (30, 7, 0.5, "larger than the 28x28 image"),
    (29, 1, 0.5, "larger"),
    (0, 7, 0.5, "--patch must be at least 1"),
    (14, 0, 0.5, "--stride must be at least 1"),
    (14, -3, 0.5, "--stride"),
    (14, 7, 1.5, "--fill"),
    (14, 7, -0.1, "--fill"),
    (14, 7, float("nan"), "--fill"),
])
def test_bad_arguments_are_refused_before_any_work(patch, stride, fill, message):
    with pytest.raises(ValueError, match=message):
        occlusion.check_arguments(28, 28, patch, stride, fill)
    with pytest.raises(ValueError, match=message):
        occlusion.occlude(None, some_image(), 3, patch=patch, stride=stride, fill=fill)  # no model touched


def test_occluded_images_change_only_the_patch():
    image = some_image()
    images, rows, cols = occlusion.occluded_images(image, 10, 9, 0.25)
    assert images.shape == (9, 28, 28, 1) and images.dtype == np.float32
    for copy, r, c in zip(images, rows, cols):
        inside = np.zeros((28, 28, 1), bool)
        inside[r:r + 10, c:c + 10] = True
        assert np.all(copy[inside] == np.float32(0.25))
        assert np.array_equal(copy[~inside], image[~inside])
    assert np.array_equal(image, some_image())  # the original is untouched


# ---------------------------------------------------------------------------- probabilities
def test_probabilities_equal_a_hand_computation(linear_model):
    model, weights, bias = linear_model
    image = some_image(1)
    result = occlusion.occlude(model, image, label=3, patch=14, stride=7, fill=0.5)
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
    result = occlusion.occlude(tiny_model, image, label=5, patch=10, stride=9, fill=0.0)
    images, _, _ = occlusion.occluded_images(image, 10, 9, 0.0)
    logits = tiny_model(images, training=False).numpy()
    np.testing.assert_allclose(result.probabilities, hand_softmax(logits.astype(np.float64)), atol=1e-5)


def test_all_copies_and_the_clean_image_go_through_the_model_in_one_call(linear_model, monkeypatch):
    from kerascnn import evaluation

    calls = []
    real = evaluation.predict_logits

    def counting(model, images, batch_size=1000):
        calls.append((len(images), batch_size))
        return real(model, images, batch_size)

    monkeypatch.setattr(evaluation, "predict_logits", counting)
    occlusion.occlude(linear_model[0], some_image(), 0, patch=1, stride=1)  # 784 copies
    assert calls == [(785, 785)]
    calls.clear()
    occlusion.sensitivity_map(linear_model[0], some_image(), 0, patch=14)  # 225 copies
    assert calls == [(226, 226)]


def test_without_a_label_the_clean_prediction_is_followed(linear_model):
    result = occlusion.occlude(linear_model[0], some_image(3))
    assert result.label == result.clean_pred
    assert result.label_source == "clean prediction"
    assert result.clean_prob_true == pytest.approx(result.clean_probabilities.max())
    with pytest.raises(ValueError, match="0-9"):
        occlusion.occlude(linear_model[0], some_image(3), 10)


def test_json_form(linear_model):
    result = occlusion.occlude(linear_model[0], some_image(), 7, index=42)
    d = json.loads(json.dumps(result.to_dict()))  # plain JSON types only
    assert {"index", "label", "patch", "stride", "fill", "clean", "positions"} <= set(d)
    assert (d["index"], d["label"], d["patch"], d["stride"], d["fill"]) == (42, 7, 14, 7, 0.5)
    assert set(d["clean"]) == {"pred", "prob_true"}
    assert len(d["positions"]) == 9
    assert set(d["positions"][0]) == {"row", "col", "prob_true", "pred", "prob_pred"}
    assert [(p["row"], p["col"]) for p in d["positions"]][:4] == [(0, 0), (0, 7), (0, 14), (7, 0)]
    assert d["positions"][1]["prob_true"] == pytest.approx(float(result.prob_true[1]))


def test_sensitivity_map_is_occlusion_with_stride_one(linear_model):
    image = some_image(4)
    heat = occlusion.sensitivity_map(linear_model[0], image, 2, patch=14)
    assert heat.stride == 1 and heat.count == 225 and heat.prob_true_grid().shape == (15, 15)
    coarse = occlusion.occlude(linear_model[0], image, 2, patch=14, stride=7)
    np.testing.assert_allclose(heat.prob_true_grid()[::7, ::7].ravel(), coarse.prob_true, atol=1e-6)


def test_pixels_never_covered_when_the_stride_skips_the_edge(linear_model):
    model = linear_model[0]
    assert occlusion.occlude(model, some_image(), 0, patch=14, stride=7).never_covered() == 0
    assert occlusion.occlude(model, some_image(), 0, patch=14, stride=5).never_covered() == 28 * 28 - 24 * 24
    assert occlusion.occlude(model, some_image(), 0, patch=10, stride=9).never_covered() == 0


def test_reference_tables():
    for digit in (7, 9):
        table = occlusion.reference_table(digit, 14, 7)
        assert len(table.prob_true) == len(table.pred) == 9
    assert occlusion.reference_table(7, 14, 7).pred[1] == 9       # a 7 hidden at the top reads as a 9
    assert occlusion.reference_table(9, 14, 7).pred[1] == 4
    assert occlusion.reference_table(3, 14, 7) is None
    assert occlusion.reference_table(7, 14, 5) is None
    assert occlusion.reference_table(None, 14, 7) is None


# ---------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    from kerascnn import store

    return store.load_model(tiny_model_path)


def run(*args):
    from click.testing import CliRunner

    from cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, fragment):
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and fragment in lines[0], lines[0]


def test_help_says_how_positions_and_labels_work():
    result = run("occlude", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help text is wrapped
    for words in ("--patch", "--stride", "--fill", "--map", "--json", "row-major", "prediction",
                  "test split", "--label"):
        assert words in text


@pytest.mark.parametrize("args, fragment", [
    (["--patch", 30], "--patch 30 is larger than the 28x28 image"),
    (["--stride", 0], "--stride must be at least 1"),
    (["--fill", 2], "--fill"),
])
def test_bad_patch_stride_fill_are_refused(args, fragment, tmp_path):
    result = run("occlude", "--digit", 7, *args, "--out", tmp_path / "o.png")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--digit", 12], "--digit must be 0-9"),
    (["--index", -1], "--index must be between 0 and 199"),
    (["--index", 10 ** 6], "--index must be between 0 and 199"),
    ([], "choose exactly one image"),
    (["--digit", 3, "--index", 4], "choose exactly one image"),
    (["--digit", 3, "--label", 4], "--label is only for --image"),
])
def test_bad_image_choices_are_refused(args, fragment, idx_dir, tiny_model_path, tmp_path):
    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, *args,
                 "--out", tmp_path / "o.png")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "o.png").exists()


def test_unreadable_image_file_is_refused(tmp_path, tiny_model_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    assert_one_line_error(run("occlude", "--model", tiny_model_path, "--image", bad), "cannot read image")
    assert_one_line_error(run("occlude", "--model", tiny_model_path, "--image", tmp_path / "missing.png"),
                          "cannot read image")


def test_occlude_an_own_picture_with_map_and_json(tmp_path, tiny_model_path, digit_png):
    out = tmp_path / "figs" / "occ.png"
    result = run("occlude", "--model", tiny_model_path, "--image", digit_png, "--map", "--json", "--out", out)
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)  # the JSON alone on stdout; file messages on stderr
    assert d["index"] is None and d["label_source"] == "clean prediction"
    assert d["label"] == d["clean"]["pred"] and len(d["positions"]) == 9
    for path in (out, tmp_path / "figs" / "occ_map.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {path}" in result.stderr


def test_occlude_prints_an_aligned_table_with_the_reference(idx_dir, tiny_model_path, tmp_path):
    from kerascnn import data

    result = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--digit", 7,
                 "--out", tmp_path / "o.png")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["pos", "row", "col"])
    rows = lines[header + 1:header + 10]
    assert [r.split()[:3] for r in rows[:2]] == [["1", "0", "0"], ["2", "0", "7"]]
    assert len({len(r) for r in rows}) == 1  # aligned
    assert "ref P(7)" in lines[header] and "0.1734" in rows[1]
    first_seven = data.pick(data.load_arrays(str(idx_dir))[3], digit=7)
    assert f"test image {first_seven} (a 7)" in result.output
    # The reference is for the first test 7: another 7, named by --index, gets none.
    labels = data.load_arrays(str(idx_dir))[3]
    second_seven = int(np.flatnonzero(labels == 7)[1])
    other = run("occlude", "--model", tiny_model_path, "--data-dir", idx_dir, "--index", second_seven,
                "--out", tmp_path / "o.png")
    assert other.exit_code == 0 and "ref P(7)" not in other.output


@pytest.fixture
def digit_png(tmp_path):
    """A dark '7' drawn on a light background, 90 x 120 pixels, as a user's photo might be."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (90, 120), "white")
    ImageDraw.Draw(picture).line([(15, 20), (75, 20), (40, 110)], fill="black", width=9)
    path = tmp_path / "seven.png"
    picture.save(path)
    return path


@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no pretrained model in saved_models/")
def test_pretrained_model_on_the_first_test_seven(tmp_path):
    import os

    tfds_dir = os.environ.get("TFDS_DATA_DIR", "")
    if not (tfds_dir and os.path.isdir(os.path.join(tfds_dir, "mnist"))):
        pytest.skip("real MNIST not at hand (set TFDS_DATA_DIR)")
    result = run("occlude", "--digit", 7, "--json", "--out", tmp_path / "o.png")
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["label"] == 7 and d["clean"]["pred"] == 7 and d["clean"]["prob_true"] > 0.9
    assert len(d["positions"]) == 9
    # Covering a corner that holds no stroke leaves a trained model sure of itself.
    assert d["positions"][0]["pred"] == 7
