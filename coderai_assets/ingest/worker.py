"""Child process that parses documents sent on stdin (see sandbox.py). Not for direct use.

Protocol: the child first writes a JSON frame `{"isolation": [...]}`; then, per document, it reads a JSON frame of
limits and a frame of bytes, and answers one JSON frame.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import stat
import sys
from pathlib import Path

from coderai_assets.errors import DocumentRejected
from coderai_assets.ingest import codes
from coderai_assets.ingest.detect import ZipLimits, check_docx_archive, detect_format
from coderai_assets.ingest.parse import parse
from coderai_assets.ingest.sandbox import read_frame, write_frame

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
NOBODY = 65534
MAX_REQUEST_BYTES = 64 * 1024


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def code_readable_by_others() -> bool:
    """Every folder Python imports from (the standard library, site-packages, this package) and the folders above
    them can be read by any user: only then does dropping to `nobody` leave later imports working (a parser
    imports codecs and submodules lazily; with a Python under /root, `cp437` was not found)."""
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if not path.exists():
            continue
        for part in (path, *path.parents):
            mode = part.stat().st_mode
            if not mode & stat.S_IXOTH or not mode & stat.S_IROTH:
                return False
    return True


def _isolate() -> list[str]:
    """What this platform allows: as root, a network namespace of its own and the `nobody` user; otherwise an
    unprivileged user and network namespace, if the kernel permits one. Returns what was applied."""
    # The parsers are imported now, while their files can certainly be read.
    import bs4  # noqa: F401
    import docx  # noqa: F401
    import pymupdf  # noqa: F401

    applied: list[str] = []
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() == 0:
        if libc.unshare(CLONE_NEWNET) == 0:
            applied.append("network namespace")
        if code_readable_by_others():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            applied.append("user nobody")
    elif libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        applied.append("user and network namespace")
    return applied


def _answer(data: bytes, request: dict) -> dict:
    fmt = None
    try:
        fmt = detect_format(data)
        if fmt == "docx":
            check_docx_archive(data, ZipLimits(**request["zip"]))
        parsed = parse(data, fmt)
        if len(parsed.text) > request["max_text_chars"]:
            raise DocumentRejected(
                f"The document's text is {len(parsed.text):,} characters, over the limit of "
                f"{request['max_text_chars']:,}.",
                code=codes.TOO_LARGE,
            )
        return {
            "status": "ok",
            "format": fmt,
            "text": parsed.text,
            "page_count": parsed.page_count,
            "encoding": parsed.encoding,
            "warnings": parsed.warnings,
        }
    except DocumentRejected as exc:
        code, message = exc.code, exc.message
    except MemoryError:
        code, message = codes.PARSE_RESOURCE_LIMIT, "The parser ran out of memory."
    except RecursionError:
        code, message = codes.CORRUPT_FILE, "The document nests too deeply to parse."
    except Exception as exc:  # a parser bug becomes a coded rejection of this one document
        code, message = codes.PARSE_FAILED, f"{type(exc).__name__}: {exc}"
    return {"status": "rejected", "format": fmt, "code": code, "message": message}


def main() -> None:
    memory_bytes = int(sys.argv[1])
    stdin = sys.stdin.buffer
    # The protocol gets a private copy of fd 1; fd 1 itself then points at stderr, because MuPDF and
    # other C libraries print warnings straight to it and would corrupt the frames.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    isolation = _isolate()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    write_frame(stdout, json.dumps({"isolation": isolation}).encode())
    while True:
        try:
            request = json.loads(read_frame(stdin, MAX_REQUEST_BYTES))
            data = read_frame(stdin, 1 << 40)
        except EOFError:
            return
        # The CPU limit is per document: the soft limit moves with what earlier documents used.
        soft = int(_cpu_used()) + int(request["cpu_seconds"])
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))
        write_frame(stdout, json.dumps(_answer(data, request), ensure_ascii=False).encode())


if __name__ == "__main__":
    main()
