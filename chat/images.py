"""Images among uploads: detection from the bytes, bounded decoding, metadata-free copies.

Everything here goes through Pillow (https://pillow.readthedocs.io): a file is an image when
Pillow opens it as one of ``FORMATS`` and ``Image.verify`` and a full decode succeed. The pixel
bound (``CHAT_MAX_IMAGE_PIXELS``) is Pillow's own decompression bomb check
(``Image.MAX_IMAGE_PIXELS``; Pillow warns past it and raises past twice it): its warning is
taken as an error here, so any image over the bound is refused.

What is stored and served never carries the uploader's metadata (EXIF with GPS position, XMP,
comments, PNG text chunks): JPEG, PNG and WebP originals are written again by Pillow with only
the colour profile and, for JPEG, the orientation kept; the thumbnail is a fresh WebP with no
metadata at all. GIF has no EXIF; its bytes are kept as uploaded, so animations stay intact
(docs/security.md, "Attachments").
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow format name -> the MIME type files of that format are served with.
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
# File name endings and declared types that say "this is an image": such a file that Pillow
# cannot read is refused (bad_image) rather than kept as an opaque file.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".gif", ".webp")
EXIF_ORIENTATION = 0x0112
# Images decoded at once per process: a 40-megapixel image holds about 300 MB while it is
# processed (docs/operations.md), so a burst of uploads over gunicorn's threads waits here
# instead of multiplying that.
DECODING = threading.BoundedSemaphore(2)


class BadImage(ValueError):
    """The bytes claim to be an image (or are one) that may not be decoded: broken, or over the
    pixel bound."""


@dataclass(frozen=True)
class ProcessedImage:
    """An accepted image: its MIME type, displayed size (after EXIF orientation), the bytes to
    store (None: keep the upload's bytes), and the WebP thumbnail with its size."""

    mime: str
    width: int
    height: int
    original: bytes | None
    thumbnail: bytes
    thumbnail_width: int
    thumbnail_height: int


def claims_image(name: str, content_type: str) -> bool:
    """True when the file's name or declared type says it is one of the four image formats."""
    return name.lower().endswith(IMAGE_SUFFIXES) or content_type.lower() in FORMATS.values()


def _open(fp: IO[bytes]) -> Image.Image:
    """``Image.open`` limited to ``FORMATS``, with the bomb warning raised as an error."""
    fp.seek(0)
    return Image.open(fp, formats=list(FORMATS))


def process(fp: IO[bytes], name: str, content_type: str) -> ProcessedImage | None:
    """Inspect an uploaded file: None when it is not an image (and does not claim to be one), the
    processed image when it is one. Raises :class:`BadImage` for a broken image, one that claims
    to be an image and is not, and one over ``CHAT_MAX_IMAGE_PIXELS`` pixels."""
    Image.MAX_IMAGE_PIXELS = settings.CHAT_MAX_IMAGE_PIXELS
    with DECODING:
        return _process(fp, name, content_type)


def _process(fp: IO[bytes], name: str, content_type: str) -> ProcessedImage | None:
    try:
        with warnings.catch_warnings():
            # Pillow warns between the bound and twice it: refused like a bigger bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with _open(fp) as probe:
                    probe.verify()
            except UnidentifiedImageError:
                if claims_image(name, content_type):
                    raise BadImage("This file says it is an image, but it is not one.") from None
                return None
            with _open(fp) as image:
                return _processed(image, fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage(
            f"The image is too large: at most {settings.CHAT_MAX_IMAGE_PIXELS:,} pixels."
        ) from None
    except BadImage:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # Truncated or corrupt data (Pillow raises these while decoding).
        raise BadImage("The image cannot be read.") from exc


def _processed(image: Image.Image, fp: IO[bytes]) -> ProcessedImage:
    image.load()  # a full decode: truncated data fails here, not later in a browser
    mime = FORMATS[image.format]
    upright = ImageOps.exif_transpose(image)
    width, height = upright.size
    thumbnail, thumb_size = _thumbnail(upright)
    return ProcessedImage(
        mime=mime,
        width=width,
        height=height,
        original=_without_metadata(image, fp),
        thumbnail=thumbnail,
        thumbnail_width=thumb_size[0],
        thumbnail_height=thumb_size[1],
    )


def _thumbnail(upright: Image.Image) -> tuple[bytes, tuple[int, int]]:
    """A WebP at most ``CHAT_THUMBNAIL_SIZE`` on its longest side, no metadata at all."""
    side = settings.CHAT_THUMBNAIL_SIZE
    alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if alpha else "RGB"
    small = upright.convert(mode)
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    small.info = {}  # nothing of the original's info (exif, xmp, icc) goes along
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80, method=4)
    return out.getvalue(), small.size


def _without_metadata(image: Image.Image, fp: IO[bytes]) -> bytes | None:
    """The image written again by Pillow without its metadata, or None for GIF (kept as is).

    JPEG keeps its quantization tables and subsampling (``quality="keep"``: no visible loss) and
    its EXIF orientation alone, so it still shows upright; PNG is lossless anyway; WebP is
    written losslessly when it was lossless, else at quality 90. Animations (APNG, WebP) keep
    their frames. The colour profile is kept: it is not personal and colours depend on it.
    """
    fmt = image.format
    if fmt == "GIF":
        return None
    icc = image.info.get("icc_profile")
    out = io.BytesIO()
    options: dict = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        orientation = image.getexif().get(EXIF_ORIENTATION)
        exif = Image.Exif()
        if orientation:
            exif[EXIF_ORIENTATION] = orientation
        image.info = {}
        image.save(out, "JPEG", quality="keep", subsampling="keep", exif=exif.tobytes(), **options)
    elif fmt == "PNG":
        animated = getattr(image, "is_animated", False)
        image.info = {key: value for key, value in image.info.items() if key == "transparency"}
        image.save(out, "PNG", save_all=animated, **options)
    else:  # WEBP
        animated = getattr(image, "is_animated", False)
        lossless = _webp_lossless(fp)
        image.info = {}
        image.save(
            out,
            "WEBP",
            save_all=animated,
            lossless=lossless,
            quality=100 if lossless else 90,
            **options,
        )
    return out.getvalue()


def _webp_lossless(fp: IO[bytes]) -> bool:
    """True when the WebP holds lossless (VP8L) image data and no lossy (VP8) data, from the
    chunk headers at its start (RIFF container, Google's WebP container specification)."""
    position = fp.tell()
    try:
        fp.seek(0)
        head = fp.read(4096)
    finally:
        fp.seek(position)
    return b"VP8L" in head and b"VP8 " not in head
