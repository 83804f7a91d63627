"""Podcast artwork: validation against Apple's rules and derivation of the files we publish.

Apple requires show and episode artwork to be square, 1400-3000 px, JPEG or PNG, in an RGB
colour space, without transparency, and with a file extension matching the real format. We
accept JPEG, PNG and WebP *input*, check it, and produce:

- a **master** (PNG if the source was PNG, JPEG otherwise), at most ``max_size`` px square,
  RGB, transparency flattened onto white, all metadata (EXIF, XMP, ICC) removed — colours are
  first converted to sRGB when an ICC profile is embedded;
- **derived** web sizes (always JPEG) for every requested size smaller than the master.

Everything here is pure, synchronous and CPU-bound: callers run :func:`process_artwork` in a
worker thread. Untrusted input is handled defensively:

- the format is sniffed from the magic bytes, never taken from a filename or declared type;
- the byte size and the pixel count *declared in the header* are checked before any pixel is
  decoded (decompression bombs). The decoder for the sniffed format is instantiated directly
  rather than through :func:`PIL.Image.open`, so Pillow's global ``Image.MAX_IMAGE_PIXELS``
  guard (a process-wide setting that emits a ``DecompressionBombWarning`` or raises
  ``DecompressionBombError``) is neither relied upon nor mutated; should it trigger anyway it is
  reported as :class:`ImageTooLargeError`;
- any decoder failure surfaces as :class:`CorruptImageError`. Every failure is an
  :class:`ArtworkError` carrying a stable ``code`` and a human-readable ``message``.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass, field
from typing import Final

from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin

try:
    from PIL import WebPImagePlugin
except ImportError:  # pragma: no cover - Pillow built without WebP support
    WebPImagePlugin = None  # type: ignore[assignment]

try:
    from PIL import ImageCms
except ImportError:  # pragma: no cover - Pillow built without LittleCMS
    ImageCms = None  # type: ignore[assignment]

__all__ = [
    "ArtworkError",
    "ArtworkVariant",
    "CorruptImageError",
    "ImageNotSquareError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "ProcessedArtwork",
    "UnsupportedImageError",
    "process_artwork",
    "sniff_image_format",
]

JPEG_MASTER_QUALITY: Final = 90
JPEG_DERIVED_QUALITY: Final = 85
_WHITE: Final = (255, 255, 255)

_JPEG_MAGIC: Final = b"\xff\xd8\xff"
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"

_CONTENT_TYPES: Final = {"JPEG": "image/jpeg", "PNG": "image/png"}
_EXTENSIONS: Final = {"JPEG": "jpg", "PNG": "png"}


# --------------------------------------------------------------------------- errors


class ArtworkError(Exception):
    """Artwork refused. ``code`` is stable (for APIs and translations); ``message`` is prose."""

    code: str = "invalid_image"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class UnsupportedImageError(ArtworkError):
    """The content is not a JPEG, PNG or WebP image."""

    code = "unsupported_image"


class ImageNotSquareError(ArtworkError):
    """Width and height differ."""

    code = "image_not_square"


class ImageTooSmallError(ArtworkError):
    """Smaller than the minimum size."""

    code = "image_too_small"


class ImageTooLargeError(ArtworkError):
    """Too many bytes or too many pixels (decompression bomb)."""

    code = "image_too_large"


class CorruptImageError(ArtworkError):
    """Truncated or undecodable."""

    code = "corrupt_image"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ArtworkVariant:
    """One encoded file: the master or a derived web size."""

    name: str
    width: int
    height: int
    format: str
    content_type: str
    extension: str
    data: bytes = field(repr=False)
    sha256_hex: str


@dataclass(frozen=True)
class ProcessedArtwork:
    """The outcome of :func:`process_artwork`."""

    source_format: str
    source_width: int
    master: ArtworkVariant
    derived: list[ArtworkVariant]

    @property
    def variants(self) -> list[ArtworkVariant]:
        """The master followed by the derived sizes (largest first)."""
        return [self.master, *self.derived]


# --------------------------------------------------------------------------- sniffing


def sniff_image_format(head: bytes) -> str | None:
    """Return ``"JPEG"``, ``"PNG"`` or ``"WEBP"`` from the magic bytes of ``head``, else None.

    ``head`` needs at least the first 12 bytes of the file.
    """
    if head.startswith(_JPEG_MAGIC):
        return "JPEG"
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


# --------------------------------------------------------------------------- processing


def process_artwork(
    data: bytes,
    *,
    min_size: int = 1400,
    max_size: int = 3000,
    derived_sizes: tuple[int, ...] = (1400, 600, 300, 150),
    max_pixels: int = 40_000_000,
    max_bytes: int = 30 * 1024 * 1024,
) -> ProcessedArtwork:
    """Validate uploaded artwork and produce the master and derived web sizes.

    Raises :class:`ArtworkError` (one of its subclasses) when the image is refused, and
    :class:`ValueError` for inconsistent arguments.
    """
    if min_size < 1 or max_size < min_size:
        raise ValueError("need 1 <= min_size <= max_size")
    if any(size < 1 for size in derived_sizes):
        raise ValueError("derived sizes must be positive")

    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"The image file is too large ({len(data)} bytes; the limit is {max_bytes} bytes)."
        )
    source_format = sniff_image_format(data[:16])
    if source_format is None:
        raise UnsupportedImageError("Artwork must be a JPEG, PNG or WebP image.")

    try:
        opened = _open_header(data, source_format)
        # Only the header has been parsed so far: check before decoding any pixel.
        _check_dimensions(opened.size, min_size=min_size, max_pixels=max_pixels)
        opened.load()
        ImageOps.exif_transpose(opened, in_place=True)
        # Orientation may swap axes; squareness and the minimum side are invariant under that,
        # but re-check so the rules hold for what is actually displayed.
        _check_dimensions(opened.size, min_size=min_size, max_pixels=max_pixels)
        rgb = _to_srgb(opened)
    except ArtworkError:
        raise
    except Image.DecompressionBombError as exc:  # defensive: Pillow's own global guard
        raise ImageTooLargeError("The image has too many pixels.") from exc
    except Exception as exc:  # Pillow raises a wide variety of errors on hostile input
        raise CorruptImageError("The image is truncated or cannot be decoded.") from exc

    source_width = rgb.width
    if rgb.width > max_size:
        rgb = rgb.resize((max_size, max_size), Image.Resampling.LANCZOS)
    rgb = _strip_metadata(rgb)

    master_format = "PNG" if source_format == "PNG" else "JPEG"
    master = _encode(rgb, "master", master_format, JPEG_MASTER_QUALITY)

    derived: list[ArtworkVariant] = []
    source = rgb
    for size in sorted(set(derived_sizes), reverse=True):
        if size >= rgb.width:
            continue
        # Cascade (each size from the previous one): much less work than resampling the
        # master every time, with no visible difference when using LANCZOS.
        source = source.resize((size, size), Image.Resampling.LANCZOS)
        derived.append(_encode(source, str(size), "JPEG", JPEG_DERIVED_QUALITY))

    return ProcessedArtwork(
        source_format=source_format,
        source_width=source_width,
        master=master,
        derived=derived,
    )


def _open_header(data: bytes, source_format: str) -> ImageFile.ImageFile:
    """Parse the header with the decoder of the sniffed format; no pixel is decoded.

    The plugin class is used directly (not ``Image.open``): the format is already known from
    the content, and Pillow's process-global decompression-bomb guard is bypassed in favour of
    our own per-call ``max_pixels`` check.
    """
    fp = io.BytesIO(data)
    if source_format == "JPEG":
        return JpegImagePlugin.JpegImageFile(fp)
    if source_format == "PNG":
        return PngImagePlugin.PngImageFile(fp)
    if WebPImagePlugin is None:  # pragma: no cover - Pillow built without WebP support
        raise UnsupportedImageError("WebP images are not supported on this server.")
    return WebPImagePlugin.WebPImageFile(fp)


def _check_dimensions(size: tuple[int, int], *, min_size: int, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise CorruptImageError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image has too many pixels ({width}x{height}; the limit is {max_pixels})."
        )
    if width != height:
        raise ImageNotSquareError(f"Artwork must be square; this image is {width}x{height} px.")
    if width < min_size:
        raise ImageTooSmallError(
            f"Artwork must be at least {min_size}x{min_size} px; this image is {width}x{height} px."
        )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def _to_srgb(image: Image.Image) -> Image.Image:
    """Return an RGB image: transparency flattened onto white, colours converted to sRGB."""
    icc = image.info.get("icc_profile")

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale (PNG): scale to 8 bits rather than clipping.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    elif image.mode == "F":
        image = image.convert("L")

    if _has_alpha(image):
        if image.mode in ("LA", "La"):
            grey = image.convert("LA")
            flat = Image.new("L", image.size, 255)
            flat.paste(grey.getchannel("L"), mask=grey.getchannel("A"))
        else:
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", image.size, _WHITE)
            flat.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        image = flat

    if image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")

    if isinstance(icc, bytes) and icc:
        converted = _apply_icc(image, icc)
        if converted is not None:
            return converted
    return image if image.mode == "RGB" else image.convert("RGB")


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _apply_icc(image: Image.Image, icc: bytes) -> Image.Image | None:
    """Convert from the embedded profile to sRGB; None when that is not possible."""
    if ImageCms is None:  # pragma: no cover - Pillow built without LittleCMS
        return None
    try:
        result = ImageCms.profileToProfile(
            image,
            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            _srgb_profile(),
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # unusable or mismatched profile: fall back to dropping it
    if result is None or result.mode != "RGB":  # pragma: no cover - defensive
        return None
    return result


def _strip_metadata(image: Image.Image) -> Image.Image:
    """A pixel-identical copy carrying no metadata at all (EXIF, XMP, ICC, text chunks)."""
    return Image.frombytes(image.mode, image.size, image.tobytes())


def _encode(image: Image.Image, name: str, fmt: str, quality: int) -> ArtworkVariant:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    else:
        # Default zlib level: ``optimize`` (level 9) costs seconds on photographic artwork for
        # a ~1% smaller file.
        image.save(buffer, format="PNG")
    data = buffer.getvalue()
    return ArtworkVariant(
        name=name,
        width=image.width,
        height=image.height,
        format=fmt,
        content_type=_CONTENT_TYPES[fmt],
        extension=_EXTENSIONS[fmt],
        data=data,
        sha256_hex=hashlib.sha256(data).hexdigest(),
    )
