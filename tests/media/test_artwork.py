"""Artwork validation and derivation: every image is generated here with Pillow."""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageFile

from amphora.media.artwork import (
    ArtworkError,
    ArtworkVariant,
    CorruptImageError,
    ImageNotSquareError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
    process_artwork,
    sniff_image_format,
)

RED = (200, 30, 40)


def make_image(size: tuple[int, int], mode: str = "RGB", color: Any = RED) -> Image.Image:
    image = Image.new(mode, size, color)
    draw = ImageDraw.Draw(image)
    width, height = size
    # Some structure, so resampling and compression have something to work on.
    fill: Any = {"RGB": (20, 120, 220), "RGBA": (20, 120, 220, 255), "CMYK": (0, 200, 0, 0)}.get(
        mode, 0
    )
    draw.rectangle((width // 4, height // 4, width // 2, height // 2), fill=fill)
    return image


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode(variant: ArtworkVariant) -> Image.Image:
    image = Image.open(io.BytesIO(variant.data))
    image.load()
    return image


def assert_clean_variant(variant: ArtworkVariant, *, fmt: str, size: int) -> Image.Image:
    assert variant.format == fmt
    assert variant.width == variant.height == size
    assert variant.sha256_hex == hashlib.sha256(variant.data).hexdigest()
    if fmt == "JPEG":
        assert (variant.content_type, variant.extension) == ("image/jpeg", "jpg")
    else:
        assert (variant.content_type, variant.extension) == ("image/png", "png")
    image = decode(variant)
    assert image.format == fmt
    assert image.size == (size, size)
    assert image.mode == "RGB"
    assert "icc_profile" not in image.info
    assert "exif" not in image.info
    assert len(image.getexif()) == 0
    return image


def png_with_declared_size(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR is patched to declare ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"GIF89a\x01\x00\x01\x00", None),
        (b"BM\x00\x00\x00\x00", None),
        (b"%PDF-1.7\n", None),
        (b"", None),
        (b"\xff\xd8", None),
    ],
)
def test_sniff_image_format(head: bytes, expected: str | None) -> None:
    assert sniff_image_format(head) == expected


# --------------------------------------------------------------------------- accepted input


def test_rgb_jpeg_3000_gives_jpeg_master_and_all_derived_sizes() -> None:
    data = encode(make_image((3000, 3000)), "JPEG", quality=90)

    result = process_artwork(data)

    assert result.source_format == "JPEG"
    assert result.source_width == 3000
    assert result.master.name == "master"
    master = assert_clean_variant(result.master, fmt="JPEG", size=3000)
    assert master.getpixel((10, 10)) == pytest.approx(RED, abs=6)
    assert [v.name for v in result.derived] == ["1400", "600", "300", "150"]
    for variant, size in zip(result.derived, (1400, 600, 300, 150), strict=True):
        image = assert_clean_variant(variant, fmt="JPEG", size=size)
        assert image.getpixel((2, 2)) == pytest.approx(RED, abs=8)
    assert result.variants == [result.master, *result.derived]
    assert len({v.sha256_hex for v in result.variants}) == 5


def test_large_png_is_downscaled_and_stays_png() -> None:
    data = encode(make_image((4000, 4000)), "PNG", compress_level=1)

    result = process_artwork(data)

    assert result.source_format == "PNG"
    assert result.source_width == 4000
    master = assert_clean_variant(result.master, fmt="PNG", size=3000)
    assert result.master.extension == "png"
    assert result.master.content_type == "image/png"
    assert master.getpixel((5, 5)) == RED
    assert master.getpixel((1100, 1100)) == (20, 120, 220)
    # Web sizes are always JPEG, whatever the master.
    assert [(v.name, v.format) for v in result.derived] == [
        ("1400", "JPEG"),
        ("600", "JPEG"),
        ("300", "JPEG"),
        ("150", "JPEG"),
    ]


def test_derived_sizes_only_below_master_size() -> None:
    data = encode(make_image((1400, 1400)), "JPEG")

    result = process_artwork(data, derived_sizes=(150, 1400, 600, 2000, 600))

    assert_clean_variant(result.master, fmt="JPEG", size=1400)
    assert [v.width for v in result.derived] == [600, 150]


def test_transparent_rgba_png_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (1500, 1500), (0, 0, 0, 0))  # fully transparent black
    ImageDraw.Draw(image).rectangle((0, 0, 499, 499), fill=(200, 30, 40, 255))
    ImageDraw.Draw(image).rectangle((1000, 1000, 1499, 1499), fill=(0, 0, 0, 128))
    result = process_artwork(encode(image, "PNG"))

    master = assert_clean_variant(result.master, fmt="PNG", size=1500)
    assert master.getpixel((100, 100)) == (200, 30, 40)
    assert master.getpixel((750, 750)) == (255, 255, 255)
    half_black = master.getpixel((1200, 1200))
    assert isinstance(half_black, tuple)
    assert all(120 <= channel <= 135 for channel in half_black)
    derived = decode(result.derived[-1])
    assert derived.getpixel((75, 75)) == pytest.approx((255, 255, 255), abs=3)


def test_paletted_png_with_transparency_is_flattened_on_white() -> None:
    image = Image.new("P", (1400, 1400), 0)
    image.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    ImageDraw.Draw(image).rectangle((0, 0, 699, 1399), fill=1)
    data = encode(image, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"

    result = process_artwork(data)

    master = assert_clean_variant(result.master, fmt="PNG", size=1400)
    assert master.getpixel((100, 700)) == RED
    assert master.getpixel((1300, 700)) == (255, 255, 255)


def test_greyscale_png_with_alpha_is_flattened_on_white() -> None:
    image = Image.new("LA", (1400, 1400), (0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 699, 1399), fill=(60, 255))
    result = process_artwork(encode(image, "PNG"))

    master = assert_clean_variant(result.master, fmt="PNG", size=1400)
    assert master.getpixel((100, 700)) == (60, 60, 60)
    assert master.getpixel((1300, 700)) == (255, 255, 255)


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (1400, 1400), 0x8000)
    data = encode(image, "PNG")

    master = decode(process_artwork(data).master)

    assert master.mode == "RGB"
    assert master.getpixel((5, 5)) == (128, 128, 128)


def test_webp_input_gives_jpeg_master() -> None:
    data = encode(make_image((1600, 1600)), "WEBP", quality=90)
    assert sniff_image_format(data) == "WEBP"

    result = process_artwork(data)

    assert result.source_format == "WEBP"
    master = assert_clean_variant(result.master, fmt="JPEG", size=1600)
    assert master.getpixel((10, 10)) == pytest.approx(RED, abs=8)
    assert [v.width for v in result.derived] == [1400, 600, 300, 150]


def test_webp_with_alpha_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (1400, 1400), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 699, 1399), fill=(*RED, 255))
    result = process_artwork(encode(image, "WEBP", lossless=True))

    master = assert_clean_variant(result.master, fmt="JPEG", size=1400)
    assert master.getpixel((1300, 700)) == pytest.approx((255, 255, 255), abs=3)
    assert master.getpixel((100, 700)) == pytest.approx(RED, abs=8)


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    image = Image.new("CMYK", (1400, 1400), (0, 255, 255, 0))  # pure red in CMYK
    data = encode(image, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"

    result = process_artwork(data)

    master = assert_clean_variant(result.master, fmt="JPEG", size=1400)
    assert master.getpixel((700, 700)) == pytest.approx((255, 0, 0), abs=8)


def test_greyscale_jpeg_is_converted_to_rgb() -> None:
    data = encode(Image.new("L", (1400, 1400), 90), "JPEG")

    master = assert_clean_variant(process_artwork(data).master, fmt="JPEG", size=1400)

    assert master.getpixel((700, 700)) == pytest.approx((90, 90, 90), abs=3)


def test_embedded_icc_profile_is_applied_then_dropped() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(make_image((1400, 1400)), "JPEG", quality=95, icc_profile=srgb)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile")

    master = assert_clean_variant(process_artwork(data).master, fmt="JPEG", size=1400)

    assert master.getpixel((10, 10)) == pytest.approx(RED, abs=8)


def test_garbage_icc_profile_is_dropped_without_failing() -> None:
    data = encode(make_image((1400, 1400)), "PNG", icc_profile=b"not really a profile")
    assert Image.open(io.BytesIO(data)).info.get("icc_profile")

    master = assert_clean_variant(process_artwork(data).master, fmt="PNG", size=1400)

    assert master.getpixel((10, 10)) == RED


def test_exif_metadata_is_removed() -> None:
    exif = Image.Exif()
    exif[0x013B] = "Jane Photographer"  # Artist
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0)}  # GPS IFD
    data = encode(make_image((1500, 1500)), "JPEG", exif=exif)
    assert Image.open(io.BytesIO(data)).getexif()[0x013B] == "Jane Photographer"
    assert b"Jane Photographer" in data

    result = process_artwork(data)

    for variant in result.variants:
        assert_clean_variant(variant, fmt="JPEG", size=variant.width)
        assert b"Jane Photographer" not in variant.data
        assert b"Exif" not in variant.data


def test_png_text_and_exif_chunks_are_removed() -> None:
    exif = Image.Exif()
    exif[0x013B] = "Jane Photographer"
    data = encode(make_image((1400, 1400)), "PNG", exif=exif)

    master = process_artwork(data).master

    assert b"Jane Photographer" not in master.data
    assert b"eXIf" not in master.data
    assert_clean_variant(master, fmt="PNG", size=1400)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (1400, 1400), (255, 255, 255))
    ImageDraw.Draw(image).rectangle((0, 0, 699, 1399), fill=RED)  # red left half
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees
    data = encode(image, "JPEG", exif=exif)

    master = decode(process_artwork(data).master)

    assert master.getpixel((1300, 700)) == pytest.approx(RED, abs=8)  # now on the right
    assert master.getpixel((100, 700)) == pytest.approx((255, 255, 255), abs=3)


def test_png_named_file_with_jpeg_content_is_detected_as_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cover.png"
    path.write_bytes(encode(make_image((1400, 1400)), "JPEG"))
    data = path.read_bytes()

    assert sniff_image_format(data[:16]) == "JPEG"
    result = process_artwork(data)

    assert result.source_format == "JPEG"
    assert (result.master.format, result.master.extension) == ("JPEG", "jpg")
    assert decode(result.master).format == "JPEG"


# --------------------------------------------------------------------------- refusals


def assert_refused(data: bytes, error: type[ArtworkError], code: str, **kwargs: Any) -> None:
    with pytest.raises(error) as caught:
        process_artwork(data, **kwargs)
    assert caught.value.code == code
    assert caught.value.message
    assert str(caught.value) == caught.value.message
    assert isinstance(caught.value, ArtworkError)


def test_too_small() -> None:
    data = encode(make_image((1399, 1399)), "JPEG")
    assert_refused(data, ImageTooSmallError, "image_too_small")


def test_not_square() -> None:
    data = encode(make_image((1400, 1500)), "PNG")
    assert_refused(data, ImageNotSquareError, "image_not_square")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_unsupported(fmt: str) -> None:
    data = encode(Image.new("RGB", (1500, 1500), RED), fmt)
    assert_refused(data, UnsupportedImageError, "unsupported_image")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        bytes(range(256)) * 40,
        b"\x89PN",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='1400' height='1400'/>",
    ],
    ids=["empty", "pdf", "random", "short-png-prefix", "svg"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    assert_refused(data, UnsupportedImageError, "unsupported_image")


def test_truncated_jpeg_is_corrupt() -> None:
    noise = Image.merge("RGB", [Image.effect_noise((1400, 1400), 64)] * 3)
    data = encode(noise, "JPEG", quality=90)
    assert_refused(data[: len(data) // 2], CorruptImageError, "corrupt_image")


def test_truncated_png_is_corrupt() -> None:
    data = encode(make_image((1400, 1400)), "PNG")
    assert_refused(data[: len(data) // 2], CorruptImageError, "corrupt_image")


def test_png_signature_with_garbage_is_corrupt() -> None:
    assert_refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, CorruptImageError, "corrupt_image")


def test_oversized_input_is_refused_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(make_image((1400, 1400)), "JPEG")
    monkeypatch.setattr("amphora.media.artwork._open_header", _must_not_be_called)
    assert_refused(data, ImageTooLargeError, "image_too_large", max_bytes=len(data) - 1)


def _must_not_be_called(*args: Any, **kwargs: Any) -> Any:
    pytest.fail("pixel data must not be decoded")


def test_decompression_bomb_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = png_with_declared_size(20_000, 20_000)
    assert len(bomb) < 200
    with pytest.raises(Image.DecompressionBombError):  # what the header now declares
        Image.open(io.BytesIO(bomb))
    monkeypatch.setattr(Image.Image, "load", _must_not_be_called)
    monkeypatch.setattr(ImageFile.ImageFile, "load", _must_not_be_called)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape either
        assert_refused(bomb, ImageTooLargeError, "image_too_large")


def test_pixel_limit_is_configurable() -> None:
    data = encode(make_image((1500, 1500)), "PNG")
    assert_refused(data, ImageTooLargeError, "image_too_large", max_pixels=1500 * 1500 - 1)
    assert process_artwork(data, max_pixels=1500 * 1500).master.width == 1500


def test_pillow_global_bomb_guard_never_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Even with Pillow's process-wide limit set very low (by someone else), the per-call limit
    # governs, and no DecompressionBombWarning/Error leaks out.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(make_image((1400, 1400)), "JPEG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = process_artwork(data)
    assert result.master.width == 1400


def test_invalid_arguments() -> None:
    data = encode(make_image((1400, 1400)), "JPEG")
    with pytest.raises(ValueError, match="min_size"):
        process_artwork(data, min_size=3000, max_size=1400)
    with pytest.raises(ValueError, match="positive"):
        process_artwork(data, derived_sizes=(0,))
