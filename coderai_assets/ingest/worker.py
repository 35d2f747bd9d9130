"""Child process that parses documents sent on stdin (see sandbox.py). Not for direct use."""

from __future__ import annotations

import os
import resource
import sys

from coderai_assets.errors import DocumentRejected
from coderai_assets.ingest import codes
from coderai_assets.ingest.detect import check_docx_archive, detect_format
from coderai_assets.ingest.parse import parse
from coderai_assets.ingest.sandbox import read_frame, write_frame


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    memory_bytes = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    stdin = sys.stdin.buffer
    # The protocol gets a private copy of fd 1; fd 1 itself then points at stderr, because MuPDF and
    # other C libraries print warnings straight to it and would corrupt the frames.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            data, cpu_seconds, zip_limits = read_frame(stdin)
        except EOFError:
            return
        # The CPU limit is per document: the soft limit moves with what earlier documents used.
        soft = int(_cpu_used()) + cpu_seconds
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))
        fmt = None
        result: tuple[str, str | None, object]
        try:
            fmt = detect_format(data)
            if fmt == "docx":
                check_docx_archive(data, zip_limits)
            result = ("ok", fmt, parse(data, fmt))
        except DocumentRejected as exc:
            result = ("rejected", fmt, (exc.code, exc.message))
        except MemoryError:
            result = ("rejected", fmt, (codes.PARSE_RESOURCE_LIMIT, "The parser ran out of memory."))
        except RecursionError:
            result = ("rejected", fmt, (codes.CORRUPT_FILE, "The document nests too deeply to parse."))
        except Exception as exc:  # a parser bug becomes a coded rejection of this one document
            result = ("rejected", fmt, (codes.PARSE_FAILED, f"{type(exc).__name__}: {exc}"))
        write_frame(stdout, result)


if __name__ == "__main__":
    main()
