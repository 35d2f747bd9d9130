"""Format parsers: bytes of a known format -> plain text. Run them in a child process (see sandbox.py)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from coderai_assets.errors import DocumentRejected
from coderai_assets.ingest import codes


@dataclass
class ParsedText:
    text: str
    page_count: int | None = None
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def normalise_text(text: str) -> str:
    """One canonical text per document: offsets of chunks and quotes all point into this string."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def parse(data: bytes, fmt: str) -> ParsedText:
    parser = {"pdf": parse_pdf, "docx": parse_docx, "html": parse_html, "txt": parse_txt}.get(fmt)
    if parser is None:
        raise DocumentRejected(f"No parser for format {fmt!r}.", code=codes.UNSUPPORTED_FORMAT)
    parsed = parser(data)
    parsed.text = normalise_text(parsed.text)
    if not parsed.text.strip():
        raise DocumentRejected(
            "The document holds no extractable text (a scan without a text layer needs OCR first).",
            code=codes.NO_TEXT,
        )
    return parsed


def parse_pdf(data: bytes) -> ParsedText:
    import pymupdf

    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises its own and generic errors for broken files
        raise DocumentRejected(f"The PDF cannot be opened: {exc}", code=codes.CORRUPT_FILE) from exc
    try:
        return _pdf_text(doc)
    except DocumentRejected:
        raise
    except Exception as exc:  # MuPDF format errors surface while walking the page tree
        raise DocumentRejected(f"The PDF is damaged: {exc}", code=codes.CORRUPT_FILE) from exc


def _pdf_text(doc) -> ParsedText:
    with doc:
        # PyMuPDF opens other formats when told filetype="pdf" (docs/decisions.md: parsing).
        if not doc.is_pdf:
            raise DocumentRejected("Not a PDF file.", code=codes.CORRUPT_FILE)
        if doc.needs_pass:
            raise DocumentRejected("The PDF is password-protected.", code=codes.ENCRYPTED)
        pages: list[str] = []
        warnings: list[str] = []
        for number, page in enumerate(doc, start=1):
            try:
                pages.append(page.get_text("text", sort=True))
            except Exception as exc:  # one broken page must not lose the others
                warnings.append(f"page {number}: {exc}")
                pages.append("")
        if not any(p.strip() for p in pages) and warnings:
            raise DocumentRejected(f"No page of the PDF could be read: {warnings[0]}", code=codes.CORRUPT_FILE)
        # Pages are separated by a form feed, so offsets can be mapped back to pages.
        return ParsedText(text="\n\f\n".join(pages), page_count=doc.page_count, warnings=warnings)


def parse_docx(data: bytes) -> ParsedText:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise DocumentRejected(f"The DOCX cannot be opened: {exc}", code=codes.CORRUPT_FILE) from exc
    except Exception as exc:  # lxml and zipfile errors from damaged packages
        raise DocumentRejected(f"The DOCX cannot be opened: {exc}", code=codes.CORRUPT_FILE) from exc
    blocks: list[str] = []
    # Body paragraphs and tables in document order.
    for child in document.element.body.iterchildren():
        name = _local_name(child)
        if name == "p":
            blocks.append(_run_text(child))
        elif name == "tbl":
            for row in child.iter():
                if _local_name(row) == "tr":
                    cells = [_run_text(cell) for cell in row.iterchildren() if _local_name(cell) == "tc"]
                    blocks.append(" | ".join(cells))
    return ParsedText(text="\n\n".join(blocks))


def _local_name(element) -> str:
    # Comments and processing instructions have a function as their tag.
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _run_text(element) -> str:
    return "".join(t.text or "" for t in element.iter() if _local_name(t) == "t")


_HTML_DROP = (
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "svg",
    "canvas",
    "nav",
    "footer",
    "form",
    "head",
)
_HTML_BLOCKS = (
    "p",
    "div",
    "section",
    "article",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "table",
    "blockquote",
    "pre",
    "header",
    "main",
    "figure",
    "figcaption",
    "dd",
    "dt",
)


def parse_html(data: bytes) -> ParsedText:
    from bs4 import BeautifulSoup, UnicodeDammit

    dammit = UnicodeDammit(data, is_html=True)
    markup = dammit.unicode_markup
    if markup is None:
        raise DocumentRejected("The HTML file's encoding cannot be determined.", code=codes.CORRUPT_FILE)
    soup = BeautifulSoup(markup, "lxml")
    for tag in soup(list(_HTML_DROP)):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    root = soup.find("article") or soup.find("main") or soup.body or soup
    for tag in root.find_all(list(_HTML_BLOCKS)):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = [re.sub(r"\s+", " ", line).strip() for line in root.get_text().split("\n")]
    text = "\n".join(line for line in lines if line)
    if title and not text.startswith(title):
        text = f"{title}\n\n{text}"
    return ParsedText(text=text, encoding=dammit.original_encoding)


def parse_txt(data: bytes) -> ParsedText:
    from charset_normalizer import from_bytes

    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return ParsedText(text=data.decode(encoding, errors="replace"), encoding=encoding)
    try:
        return ParsedText(text=data.decode("utf-8"), encoding="utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise DocumentRejected("The text file's encoding cannot be determined.", code=codes.UNSUPPORTED_FORMAT)
    # On short Western text the detector often picks a DOS code page; Windows-1252 is far more common.
    if best.encoding in _DOS_CODE_PAGES:
        try:
            return ParsedText(text=data.decode("cp1252"), encoding="cp1252")
        except UnicodeDecodeError:
            pass
    return ParsedText(text=str(best), encoding=best.encoding)


_DOS_CODE_PAGES = {"cp437", "cp850", "cp852", "cp858", "cp860", "cp861", "cp863", "cp865"}
