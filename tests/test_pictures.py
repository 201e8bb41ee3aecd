"""kerascnn.data.pictures: a user's own picture in a task's shape."""
import warnings

import numpy as np
import pytest
from PIL import Image

from kerascnn.errors import UserError
from kerascnn.data.pictures import load_picture


def test_sixteen_bit_png_is_scaled_by_its_range(tmp_path):
    values = np.full((40, 40), 3000, np.uint16)
    values[10:30, 10:30] = 60000
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")  # really a 16-bit file
    picture = load_picture(tmp_path / "deep.png", (20, 20, 1))
    assert picture.shape == (20, 20, 1) and picture.dtype == np.float32
    assert picture[10, 10, 0] == pytest.approx(60000 / 65535, abs=0.01)
    assert 0.9 < picture.max() < 0.96  # LANCZOS rings a little at the edges; not clipped to white
    assert picture[0, 0, 0] == pytest.approx(3000 / 65535, abs=0.01)


def test_transparency_is_white_paper(tmp_path):
    rgba = np.zeros((30, 30, 4), np.uint8)  # black everywhere, opaque only in a small square
    rgba[12:18, 12:18, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    for channels in (1, 3):
        picture = load_picture(tmp_path / "clear.png", (30, 30, channels))
        assert picture.shape == (30, 30, channels)
        np.testing.assert_allclose(picture[0], 1.0, atol=1e-6)
        np.testing.assert_allclose(picture[15, 15], 0.0, atol=1e-6)


def test_plain_rgb_is_resized_without_inversion(tmp_path):
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (255, 0, 0)
    rgb[:, 32:] = (255, 255, 255)  # a light background must not be inverted when digits=False
    Image.fromarray(rgb).save(tmp_path / "flag.png")
    picture = load_picture(tmp_path / "flag.png", (32, 32, 3))
    assert picture.shape == (32, 32, 3) and picture.dtype == np.float32
    assert 0.0 <= picture.min() and picture.max() <= 1.0
    np.testing.assert_allclose(picture[16, 2], (1, 0, 0), atol=0.02)
    np.testing.assert_allclose(picture[16, 30], (1, 1, 1), atol=0.02)
    grey = load_picture(tmp_path / "flag.png", (24, 40, 1))
    assert grey.shape == (24, 40, 1)
    assert grey[12, 2, 0] == pytest.approx(0.299, abs=0.02)  # PIL's L = 0.299 R + 0.587 G + 0.114 B


@pytest.mark.parametrize("shape", [(28, 28, 1), (40, 40, 1), (36, 48, 3)])
def test_digit_is_framed_like_mnist(tmp_path, shape):
    page = np.full((300, 200), 250, np.uint8)  # dark ink on light paper, far from the centre
    page[30:130, 20:35] = 10
    page[30:45, 20:90] = 10
    Image.fromarray(page).save(tmp_path / "digit.png")
    picture = load_picture(tmp_path / "digit.png", shape, digits=True)
    height, width, channels = shape
    assert picture.shape == shape and picture.dtype == np.float32
    ink = picture[:, :, 0]
    assert ink[0, 0] == 0.0 and ink.max() == pytest.approx(1.0, abs=0.05)  # inverted: light ink on black
    yy, xx = np.mgrid[0:height, 0:width]
    assert abs((yy * ink).sum() / ink.sum() - (height - 1) / 2) <= 1
    assert abs((xx * ink).sum() / ink.sum() - (width - 1) / 2) <= 1
    rows = np.flatnonzero(ink.max(axis=1) > 0.2)
    assert abs((rows[-1] - rows[0] + 1) - 20 / 28 * min(height, width)) <= 2  # the tall side fills 20/28
    if channels == 3:
        np.testing.assert_array_equal(picture[:, :, 1], ink)


def test_big_pictures_are_read_quietly_and_too_big_ones_refused(tmp_path, monkeypatch):
    Image.new("L", (40, 40), 255).save(tmp_path / "big.png")
    Image.new("L", (50, 50), 255).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warns over 1,000 pixels, refuses over 2,000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        picture = load_picture(tmp_path / "big.png", (8, 8, 1))
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert picture.shape == (8, 8, 1)
    with pytest.raises(UserError, match="cannot read image .*huge.png") as error:
        load_picture(tmp_path / "huge.png", (8, 8, 1))
    assert "\n" not in str(error.value)


def test_a_large_sixteen_bit_picture_is_shrunk_first(tmp_path):
    values = np.full((2100, 2100), 1000, np.uint16)
    values[:, 1050:] = 50000
    Image.fromarray(values).save(tmp_path / "wide.png")
    picture = load_picture(tmp_path / "wide.png", (10, 10, 1))
    assert picture[5, 1, 0] == pytest.approx(1000 / 65535, abs=0.01)
    assert picture[5, 8, 0] == pytest.approx(50000 / 65535, abs=0.01)


def test_unreadable_file_is_one_line(tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(UserError, match=r"^cannot read image .*notes.png: ") as error:
        load_picture(tmp_path / "notes.png", (28, 28, 1))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="cannot read image"):
        load_picture(tmp_path / "missing.png", (28, 28, 1))
