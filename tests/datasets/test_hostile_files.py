"""Hostile and odd files for the readers of images, masks, class-name files and image lists (hypothesis).

Every reader either returns what it documents or raises a ``ValueError`` (``FileNotFoundError`` for a
missing file) whose message names the file: random and truncated bytes, empty files, zero-size and
1-pixel images, declared sizes far beyond the data (decompression bombs, refused before their pixels
are allocated), every Pillow mode, palettes with transparency, CMYK, EXIF rotations, NaN and inf in
float masks, file names and contents that are not UTF-8. Example counts are small so the suite stays
fast; each property still runs on fresh random input every session.
"""

import io
import os
import resource
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sklearn_ddpm.datasets import read_class_names, read_image, read_mask
from sklearn_ddpm.datasets._folders import list_images, read_image_list

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EXTENSIONS = [".png", ".jpg", ".tif", ".bmp", ".gif", ".webp", ".npy"]


def _named(error, path):
    message = str(error)
    return str(path) in message or Path(path).name in message


def _check_reader(reader, path):
    """``reader(path)``: an array, or a ValueError naming the file; never another exception."""
    try:
        result = reader(path)
    except ValueError as exc:
        assert _named(exc, path), f"{type(exc).__name__} does not name the file: {exc}"
        return None
    assert isinstance(result, np.ndarray) and result.size > 0 and min(result.shape[:2]) >= 1
    if result.dtype.kind == "f":
        assert np.isfinite(result).all()
    return result


@pytest.fixture
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


# -- random, truncated and empty files ---------------------------------------------------------------
@FAST
@given(data=st.binary(max_size=3000), extension=st.sampled_from(EXTENSIONS))
def test_random_bytes(folder, data, extension):
    path = folder / f"random{extension}"
    path.write_bytes(data)
    for reader in (read_image, read_mask):
        _check_reader(reader, path)


def _encoded(image, fmt):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@FAST
@given(height=st.integers(1, 40), width=st.integers(1, 40), seed=st.integers(0, 2**16),
       fmt=st.sampled_from(["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP"]), keep=st.floats(0, 0.99))
def test_truncated_files(folder, height, width, seed, fmt, keep):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    data = _encoded(image, fmt)
    path = folder / f"cut.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * keep)])
    for reader in (read_image, read_mask):
        _check_reader(reader, path)


def test_empty_and_missing_files(folder):
    for extension in EXTENSIONS:
        path = folder / f"empty{extension}"
        path.write_bytes(b"")
        for reader in (read_image, read_mask):
            with pytest.raises(ValueError, match=f"empty{extension}"):
                reader(path)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(folder / "missing.png")


# -- sizes: zero, one pixel, and declared sizes far beyond the data -----------------------------------
def _png_header_only(width, height, mode_bytes=b"\x08\x02"):
    """A PNG whose IHDR declares ``width`` x ``height`` followed by a tiny IDAT: a decompression bomb's shape."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">II", width, height) + mode_bytes + b"\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_decompression_bombs_are_refused_before_allocation(folder):
    before = _max_rss_mib()
    bomb = folder / "bomb.png"
    bomb.write_bytes(_png_header_only(200_000, 200_000))  # 40 G pixels, 120 GB as RGB
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match="bomb.png.*pixels"):
            reader(bomb)
    # a .npy mask whose header declares far more elements than the file holds
    header = {"descr": "<i8", "fortran_order": False, "shape": (100_000, 100_000)}
    npy = folder / "bomb.npy"
    with open(npy, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\x00" * 64)
    with pytest.raises(ValueError, match="bomb.npy.*declares"):
        read_mask(npy)
    assert _max_rss_mib() - before < 200  # nothing near the declared sizes was allocated


@pytest.mark.parametrize("width,height", [(0, 5), (5, 0), (0, 0)])
def test_zero_size_images(folder, width, height):
    path = folder / "zero.png"
    path.write_bytes(_png_header_only(width, height))
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match="zero.png"):
            reader(path)
    np.save(folder / "zero.npy", np.zeros((height, width), np.uint8))
    with pytest.raises(ValueError, match="zero.npy"):
        read_mask(folder / "zero.npy")


def test_one_pixel_images(folder):
    Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)).save(folder / "one.png")
    assert read_image(folder / "one.png").tolist() == [[[10, 20, 30]]]
    Image.fromarray(np.array([[3]], np.uint8)).save(folder / "one_mask.png")
    assert read_mask(folder / "one_mask.png").tolist() == [[3]]


# -- every Pillow mode, palettes with transparency, CMYK, EXIF ----------------------------------------
MODES = {  # mode -> formats that store it
    "1": ["PNG", "TIFF", "BMP"], "L": ["PNG", "JPEG", "TIFF", "BMP"], "LA": ["PNG", "TIFF"],
    "P": ["PNG", "GIF", "TIFF", "BMP"], "PA": ["PNG"], "RGB": ["PNG", "JPEG", "TIFF", "BMP", "WEBP"],
    "RGBA": ["PNG", "TIFF", "WEBP"], "CMYK": ["JPEG", "TIFF"], "YCbCr": ["JPEG", "TIFF"], "LAB": ["TIFF"],
    "I": ["PNG", "TIFF"], "I;16": ["PNG", "TIFF"], "I;16B": ["TIFF"], "F": ["TIFF"],
}
SINGLE_CHANNEL = {"1", "L", "P", "I", "I;16", "I;16B"}


def _image_of_mode(mode, height, width, rng):
    if mode in ("I", "I;16", "I;16B"):
        return Image.fromarray(rng.integers(0, 3000, (height, width), dtype=np.uint16).astype(np.int32)).convert(mode) \
            if mode == "I" else Image.fromarray(rng.integers(0, 65535, (height, width), dtype=np.uint16)).convert(mode)
    if mode == "F":
        return Image.fromarray(rng.normal(size=(height, width)).astype(np.float32))
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


@FAST
@given(mode_format=st.sampled_from([(m, f) for m, fs in MODES.items() for f in fs]), height=st.integers(1, 24),
       width=st.integers(1, 24), seed=st.integers(0, 2**16))
def test_every_pillow_mode(folder, mode_format, height, width, seed):
    mode, fmt = mode_format
    image = _image_of_mode(mode, height, width, np.random.default_rng(seed))
    path = folder / f"mode_{mode.replace(';', '_')}.{fmt.lower()}"
    try:
        image.save(path, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this combination: nothing to read
    array = _check_reader(read_image, path)
    if array is not None:
        assert array.shape[:2] == (height, width) and array.ndim == 3 and array.shape[2] >= 3
    mask = _check_reader(read_mask, path)
    if mask is not None:
        assert mask.shape == (height, width) and np.issubdtype(mask.dtype, np.integer)
    with Image.open(path) as stored:
        if stored.mode in SINGLE_CHANNEL:
            assert mask is not None, f"{stored.mode} {fmt}: single-channel masks are read"


def test_palette_with_transparency(folder):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 4, (6, 7), dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    image.info["transparency"] = 0
    image.save(folder / "palette.png", transparency=0)
    np.testing.assert_array_equal(read_mask(folder / "palette.png"), indices)  # the indices, not colours
    rgb = read_image(folder / "palette.png")
    assert rgb.shape == (6, 7, 3) and rgb[indices == 1].tolist() == [[255, 0, 0]] * int((indices == 1).sum())


def test_cmyk_jpeg_becomes_rgb(folder):
    Image.new("CMYK", (9, 5), (0, 255, 255, 0)).save(folder / "cmyk.jpg")  # pure red in CMYK
    with pytest.warns(UserWarning, match="cmyk.jpg"):
        rgb = read_image(folder / "cmyk.jpg")
    assert rgb.shape == (5, 9, 3) and rgb[..., 0].min() > 200 and rgb[..., 1:].max() < 60


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_rotations_are_applied(folder, orientation):
    array = np.zeros((4, 6, 3), np.uint8)
    array[0, 0] = 255  # a white corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(folder / "exif.png", exif=exif)
    image = read_image(folder / "exif.png")
    assert image.shape[:2] == ((6, 4) if orientation >= 5 else (4, 6))
    corner = {1: (0, 0), 2: (0, -1), 3: (-1, -1), 4: (-1, 0), 5: (0, 0), 6: (0, -1), 7: (-1, -1), 8: (-1, 0)}
    assert image[corner[orientation]].tolist() == [255, 255, 255]


# -- float masks ---------------------------------------------------------------------------------
@FAST
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=12))
def test_float_masks_are_refused(folder, values):
    array = np.array(values, np.float32).reshape(1, -1)
    np.save(folder / "float.npy", array)
    with pytest.raises(ValueError, match="float.npy.*integer class indices"):
        read_mask(folder / "float.npy")
    Image.fromarray(array).save(folder / "float.tif")
    with pytest.raises(ValueError, match="float.tif"):
        read_mask(folder / "float.tif")


# -- names and text files ------------------------------------------------------------------------
def test_file_names_that_are_not_utf8(folder):
    name = os.fsdecode(b"caf\xe9 \xff.png")  # Latin-1 bytes: not UTF-8
    target = folder / "names"
    target.mkdir()
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(target / name, format="PNG")
    (path,) = list_images(target)
    assert read_image(path).shape == (3, 4, 3)
    (target / name).write_bytes(b"junk")
    with pytest.raises(ValueError) as info:
        read_image(path)
    assert _named(info.value, path)
    str(info.value).encode("utf-8", "backslashreplace")  # printable on a UTF-8 terminal


@FAST
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(lambda t: t.encode("utf-8"))),
       extension=st.sampled_from([".txt", ".json", ".yaml", ".csv"]))
def test_class_name_files(folder, data, extension):
    path = folder / f"classes{extension}"
    path.write_bytes(data)
    try:
        names = read_class_names(path)
    except ValueError as exc:
        assert _named(exc, path), str(exc)
        return
    assert names and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


@FAST
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(lambda t: t.encode("utf-8"))))
def test_image_list_files(folder, data):
    path = folder / "list.txt"
    path.write_bytes(data)
    try:
        names = read_image_list(path)
    except ValueError as exc:
        assert _named(exc, path), str(exc)
        return
    assert names and all(isinstance(n, str) and n and "#" not in n and n == n.strip() for n in names)


def test_latin1_class_names_are_named_in_the_error(folder):
    (folder / "classes.txt").write_bytes("arrière-plan\ncheval\n".encode("latin-1"))
    with pytest.raises(ValueError, match="classes.txt.*UTF-8"):
        read_class_names(folder / "classes.txt")
    (folder / "list.txt").write_bytes("écurie.jpg\n".encode("latin-1"))
    with pytest.raises(ValueError, match="list.txt.*UTF-8"):
        read_image_list(folder / "list.txt")
