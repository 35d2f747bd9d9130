"""Decide a file's format from its content, never from its extension, and vet DOCX archives before parsing."""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass

from coderai_assets.errors import DocumentRejected
from coderai_assets.ingest import codes

# Formats that are certainly not documents we read, by magic bytes.
_BINARY_MAGIC = {
    b"\x89PNG": "png",
    b"\xff\xd8\xff": "jpeg",
    b"GIF8": "gif",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"\x1f\x8b": "gzip",
    b"7z\xbc\xaf": "7z",
    b"Rar!": "rar",
    b"\x7fELF": "elf",
    b"MZ": "exe",
}
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE compound file: .doc, or an encrypted OOXML package
_HTML_MARKERS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<meta ",
    b"<title",
    b"<div",
    b"<p>",
    b"<article",
    b"<script",
    b"<style",
    b"<table",
    b"<span",
    b"<a ",
)


@dataclass(frozen=True)
class ZipLimits:
    max_uncompressed_bytes: int
    max_entries: int
    max_ratio: float


def detect_format(data: bytes) -> str:
    """Return 'pdf', 'docx', 'html' or 'txt', or raise DocumentRejected with a specific code."""
    if not data:
        raise DocumentRejected("The file is empty.", code=codes.EMPTY_FILE)
    head = data[:2048]
    # PDF readers accept the header anywhere in the first KiB.
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "docx"  # vetted by check_docx_archive; a zip that is not a DOCX is rejected there
    if head.startswith(_CFB_MAGIC):
        if b"E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e" in data:
            raise DocumentRejected("The DOCX file is password-protected.", code=codes.ENCRYPTED)
        raise DocumentRejected(
            "Legacy Word 97-2003 (.doc) and other OLE files are not supported; save as DOCX or PDF.",
            code=codes.UNSUPPORTED_FORMAT,
        )
    for magic, name in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise DocumentRejected(f"A {name} file is not a document CoderAI can read.", code=codes.UNSUPPORTED_FORMAT)
    if _looks_like_html(head):
        return "html"
    if _looks_like_text(data[:65536]):
        return "txt"
    raise DocumentRejected("Binary content of an unknown format.", code=codes.UNSUPPORTED_FORMAT)


def _looks_like_html(head: bytes) -> bool:
    sample = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not sample:
        return False
    # UTF-16 HTML: drop the zero bytes before looking for tags.
    if b"\x00" in sample[:200]:
        sample = sample.replace(b"\x00", b"").lstrip(b"\xff\xfe ")
    if not sample.startswith(b"<"):
        return False
    return any(marker in sample for marker in _HTML_MARKERS)


def _looks_like_text(sample: bytes) -> bool:
    from charset_normalizer import from_bytes

    if sample.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    best = from_bytes(sample).best()
    if best is None:
        return False
    decoded = str(best)
    if not decoded:
        return False
    control = sum(1 for ch in decoded if ord(ch) < 32 and ch not in "\t\r\n\f\v")
    return control / len(decoded) < 0.01


def check_docx_archive(data: bytes, limits: ZipLimits) -> None:
    """Reject zips that are not DOCX, escape their folder, or inflate past the limits (docs/decisions.md: parsing)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise DocumentRejected(f"The DOCX archive is damaged: {exc}", code=codes.CORRUPT_FILE) from exc
    if len(infos) > limits.max_entries:
        raise DocumentRejected(f"The archive has {len(infos)} entries.", code=codes.ARCHIVE_BOMB)
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            raise DocumentRejected(f"Unsafe path in archive: {name!r}", code=codes.UNSAFE_ARCHIVE)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DocumentRejected(f"Symbolic link in archive: {name!r}", code=codes.UNSAFE_ARCHIVE)
        total += info.file_size
        if (
            info.compress_size
            and info.file_size / info.compress_size > limits.max_ratio
            and info.file_size > 10_000_000
        ):
            raise DocumentRejected(
                f"Entry {name!r} inflates {info.file_size / info.compress_size:.0f}x.",
                code=codes.ARCHIVE_BOMB,
            )
    if total > limits.max_uncompressed_bytes:
        raise DocumentRejected(f"The archive inflates to {total} bytes.", code=codes.ARCHIVE_BOMB)
    names = {info.filename for info in infos}
    if "[Content_Types].xml" not in names:
        raise DocumentRejected("A zip file that is not a Word document.", code=codes.UNSUPPORTED_FORMAT)
    if not any(n.startswith("word/") and n.endswith(".xml") for n in names):
        raise DocumentRejected("An Office package without a Word document part.", code=codes.UNSUPPORTED_FORMAT)
