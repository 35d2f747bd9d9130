"""Ingestion: format by content, parsers, sandbox limits, chunk offsets."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from coderai_assets.errors import DocumentRejected
from coderai_assets.ingest import codes
from coderai_assets.ingest.chunk import chunk_text
from coderai_assets.ingest.detect import ZipLimits, check_docx_archive, detect_format
from coderai_assets.ingest.parse import parse
from coderai_assets.ingest.sandbox import ParseLimits, ParseWorker, parse_in_child

LIMITS = ParseLimits(timeout_seconds=60, cpu_seconds=60, memory_bytes=1024**3)


def test_demo_files_parse_to_their_text(demo_files):
    by_suffix = {p.suffix: p.read_bytes() for p in demo_files}
    assert detect_format(by_suffix[".txt"]) == "txt"
    assert detect_format(by_suffix[".html"]) == "html"
    assert detect_format(by_suffix[".pdf"]) == "pdf"
    assert detect_format(by_suffix[".docx"]) == "docx"
    html = parse(by_suffix[".html"], "html").text
    assert "Some 450 dock workers" in html
    assert "track()" not in html and "Home | World" not in html and "(c) Demo News" not in html
    pdf = parse(by_suffix[".pdf"], "pdf")
    assert "Around 200 students held a sit-in" in " ".join(pdf.text.split())
    assert pdf.page_count == 1
    assert "Roughly 1,200 farmers" in parse(by_suffix[".docx"], "docx").text


def test_format_is_decided_by_content_not_extension(demo_files, tmp_path):
    pdf = next(p for p in demo_files if p.suffix == ".pdf")
    renamed = tmp_path / "report.txt"
    renamed.write_bytes(pdf.read_bytes())
    outcome = parse_in_child(renamed.read_bytes(), LIMITS)
    assert outcome.ok and outcome.format == "pdf"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", codes.EMPTY_FILE),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), codes.UNSUPPORTED_FORMAT),
        (bytes(range(256)) * 50, codes.UNSUPPORTED_FORMAT),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), codes.UNSUPPORTED_FORMAT),
    ],
)
def test_unreadable_formats_are_rejected_with_a_code(data, code):
    with pytest.raises(DocumentRejected) as error:
        detect_format(data)
    assert error.value.code == code


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_hostile_archives_are_rejected_before_parsing():
    limits = ZipLimits(max_uncompressed_bytes=5_000_000, max_entries=100, max_ratio=100)
    with pytest.raises(DocumentRejected) as slip:
        check_docx_archive(_zip({"[Content_Types].xml": b"x", "../../evil.xml": b"x"}), limits)
    assert slip.value.code == codes.UNSAFE_ARCHIVE
    with pytest.raises(DocumentRejected) as bomb:
        check_docx_archive(_zip({"[Content_Types].xml": b"x", "word/document.xml": bytes(20_000_000)}), limits)
    assert bomb.value.code == codes.ARCHIVE_BOMB
    with pytest.raises(DocumentRejected) as plain_zip:
        check_docx_archive(_zip({"readme.txt": b"hello"}), limits)
    assert plain_zip.value.code == codes.UNSUPPORTED_FORMAT


def test_encrypted_pdf_is_rejected(tmp_path):
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret minutes")
    path = tmp_path / "locked.pdf"
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    outcome = parse_in_child(path.read_bytes(), LIMITS)
    assert outcome.error_code == codes.ENCRYPTED


def test_scan_without_text_layer_is_no_text(tmp_path):
    import pymupdf

    doc = pymupdf.open()
    doc.new_page()
    outcome = parse_in_child(doc.tobytes(), LIMITS)
    assert outcome.error_code == codes.NO_TEXT


def test_text_encodings_are_detected():
    text = "Zürich: Demonstranten forderten höhere Löhne – über 2.000 Menschen."
    for encoding in ("utf-8", "utf-16", "cp1252"):
        data = text.encode(encoding)
        fmt = detect_format(data)
        assert fmt == "txt"
        assert parse(data, fmt).text == text


def test_wall_clock_limit_kills_the_parser_and_the_worker_recovers(demo_files):
    slow = ParseLimits(timeout_seconds=0.001, cpu_seconds=60, memory_bytes=1024**3)
    with ParseWorker(slow) as worker:
        assert worker.parse(demo_files[0].read_bytes()).error_code == codes.PARSE_TIMEOUT
    with ParseWorker(LIMITS) as worker:
        assert worker.parse(demo_files[0].read_bytes()).ok
        assert worker.parse(b"\x89PNG\r\n\x1a\n").error_code == codes.UNSUPPORTED_FORMAT
        assert worker.parse(demo_files[1].read_bytes()).ok  # the same worker goes on after a rejection


def test_memory_limit_ends_as_a_resource_code():
    tight = ParseLimits(timeout_seconds=60, cpu_seconds=60, memory_bytes=200 * 1024**2)
    # A text file large enough that decoding and normalising it needs more than 200 MiB.
    outcome = parse_in_child(b"protest " * 40_000_000, tight)
    assert outcome.error_code == codes.PARSE_RESOURCE_LIMIT


@pytest.mark.parametrize("size,overlap", [(50, 10), (200, 40), (1000, 0)])
def test_chunks_keep_exact_offsets_and_cover_the_text(size, overlap):
    text = ("Police said the march was peaceful. " * 40 + "\n\n") * 3
    chunks = chunk_text(text, size=size, overlap=overlap)
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text)
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        assert chunk.char_start <= previous.char_end  # no gap
        assert chunk.char_start > previous.char_start  # always progresses
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert len(chunk.text) <= size


def test_hostile_corpus_files_all_end_with_a_code(corpus):
    """Every file under adversarial/ is accepted or rejected with a known code; none crashes the worker."""
    known = {v for k, v in vars(codes).items() if k.isupper()}
    files = sorted(p for p in (corpus / "adversarial").rglob("*") if p.is_file())
    assert files
    with ParseWorker(ParseLimits(timeout_seconds=60, cpu_seconds=60, memory_bytes=1024**3)) as worker:
        for path in files:
            outcome = worker.parse(path.read_bytes())
            assert outcome.ok or outcome.error_code in known, (path.name, outcome)
            if "encrypted" in path.name or "password" in path.name and "owner" not in path.name:
                assert outcome.error_code in (codes.ENCRYPTED, codes.UNSUPPORTED_FORMAT, codes.NO_TEXT), path.name
            if "zip-slip" in path.name or "symlink" in path.name:
                assert outcome.error_code == codes.UNSAFE_ARCHIVE
            if "zip-bomb" in path.name:
                assert outcome.error_code == codes.ARCHIVE_BOMB


def test_the_parse_child_is_a_boundary(monkeypatch, tmp_path):
    """The child inherits no secret, replies in JSON that is read only up to a cap, and refuses text over the cap
    (a 100 MiB TXT became about 10 GB of grounding index in the run worker). As root, it runs as nobody in a
    network namespace of its own."""
    import os

    from coderai_assets.ingest import codes, sandbox
    from coderai_assets.ingest.sandbox import ParseLimits, ParseWorker
    from coderai_assets.ingest.worker import code_readable_by_others

    monkeypatch.setenv("CODERAI_SECRET_KEY", "parent-secret-0123456789")
    monkeypatch.setenv("CODERAI_LLM_API_KEY", "sk-parent")
    limits = ParseLimits(timeout_seconds=60, cpu_seconds=60, memory_bytes=1024**3, max_text_chars=10_000)
    with ParseWorker(limits) as worker:
        isolation = worker.start()
        environment = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environment if v.startswith(b"CODERAI_") or b"secret" in v.lower()]
        if os.geteuid() == 0:
            # A network of its own always; `nobody` when the Python it imports from is readable by any user.
            assert os.readlink(f"/proc/{worker.pid}/ns/net") != os.readlink("/proc/self/ns/net")
            uid = "65534" if code_readable_by_others() else "0"
            assert isolation == ["network namespace"] + (["user nobody"] if uid != "0" else [])
            assert f"\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n" in Path(f"/proc/{worker.pid}/status").read_text()
        ok = worker.parse(b"A short report about a strike in Porto.")
        assert ok.ok and ok.parsed.text == "A short report about a strike in Porto."
        too_long = worker.parse(b"word " * 5_000)
        assert (too_long.ok, too_long.error_code) == (False, codes.TOO_LARGE)
        # A reply over what the text cap allows is not read, and the child is not used again.
        monkeypatch.setattr(sandbox, "reply_limit", lambda chars: 10)
        refused = worker.parse(b"A short report about a strike in Porto.")
        assert (refused.ok, refused.error_code) == (False, codes.TOO_LARGE)
    # Stored files are the owner's alone, so a child running as another user cannot read them.
    from coderai_assets.storage.files import LocalFileStorage

    storage = LocalFileStorage(tmp_path)
    storage.write("t/p/documents/d/original", b"x")
    assert oct(os.stat(storage.path("t/p/documents/d/original")).st_mode & 0o777) == "0o600"
