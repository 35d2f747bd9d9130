"""Parse documents in a child process held to memory, CPU and wall-clock limits (docs/decisions.md: parsing), and
kept apart from everything the run worker can reach.

The child is a plain `python -m coderai_assets.ingest.worker` process, reused for many documents
(imports cost about a second) and replaced after any failure it could not report itself, such as
being killed at the wall-clock limit or by the kernel at the memory limit.

The boundary: the child starts with an empty environment (no JWT secret, LLM key or database URL); as root it moves
into a network namespace of its own and drops to `nobody` if the Python it imports from is readable by any user (as
another user, it tries an unprivileged user and network namespace); it reads documents from stdin only, and stored
files are readable by their owner alone (storage/files.py). Its replies are JSON, read only up to a size that the
text cap allows, and never unpickled; its text is capped (`too_large`). What remains: with a Python that only root
can read, or as a non-root user without user namespaces, the child keeps the parent's user (and, in the second
case, its network); it can then read what that user can read outside the storage folder.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from queue import Empty, Queue

from coderai_assets.ingest import codes
from coderai_assets.ingest.detect import ZipLimits
from coderai_assets.ingest.parse import ParsedText


@dataclass(frozen=True)
class ParseLimits:
    timeout_seconds: float = 120.0
    cpu_seconds: int = 120
    memory_bytes: int = 2 * 1024**3
    zip: ZipLimits = field(
        default_factory=lambda: ZipLimits(max_uncompressed_bytes=300 * 1024**2, max_entries=10_000, max_ratio=200.0)
    )
    # Characters of text a document may have: every later stage (chunks, grounding index, export) grows with it.
    max_text_chars: int = 5_000_000


@dataclass
class ParseOutcome:
    format: str | None
    parsed: ParsedText | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.parsed is not None


_HEADER = struct.Struct("!Q")
# Variables the child may inherit: none that hold a secret or an address.
_CHILD_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "PYTHONPATH")


class FrameTooLarge(Exception):
    pass


def write_frame(stream, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream, max_bytes: int) -> bytes:
    """One frame; FrameTooLarge before reading a payload declared over `max_bytes`."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    if size > max_bytes:
        raise FrameTooLarge(f"{size} bytes")
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return payload


def reply_limit(max_text_chars: int) -> int:
    """The largest reply a child that keeps to the text cap can send: JSON escapes a character in at most 6
    bytes, plus room for warnings."""
    return max_text_chars * 6 + 1024 * 1024


def child_environment() -> dict[str, str]:
    return {k: os.environ[k] for k in _CHILD_ENVIRONMENT if k in os.environ}


class ParseWorker:
    """One long-lived child process; `parse` never raises for a bad document, it returns a coded outcome."""

    def __init__(self, limits: ParseLimits, max_tasks: int = 200):
        self.limits = limits
        self.max_tasks = max_tasks
        self._process: subprocess.Popen[bytes] | None = None
        self._tasks = 0
        self._lock = threading.Lock()
        self.isolation: list[str] = []  # what the child could apply to itself, from its first frame

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "coderai_assets.ingest.worker", str(self.limits.memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_environment(),
            close_fds=True,
        )
        assert process.stdout is not None
        self._tasks = 0
        try:
            ready, _, _ = select.select([process.stdout], [], [], self.limits.timeout_seconds)
            hello = json.loads(read_frame(process.stdout, 64 * 1024)) if ready else {}
        except (EOFError, FrameTooLarge, ValueError):
            hello = {}
        self.isolation = list(hello.get("isolation", []))
        return process

    def start(self) -> list[str]:
        """Starts the child now (parse starts it when needed); what isolation it applied."""
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            return self.isolation

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(5)
            for stream in (self._process.stdin, self._process.stdout):
                if stream:
                    stream.close()
            self._process = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parse(self, data: bytes) -> ParseOutcome:
        with self._lock:
            if self._process is None or self._process.poll() is not None or self._tasks >= self.max_tasks:
                self._stop()
                self._process = self._start()
            process = self._process
            assert process.stdin and process.stdout
            self._tasks += 1
            deadline = time.monotonic() + self.limits.timeout_seconds
            request = {
                "cpu_seconds": self.limits.cpu_seconds,
                "zip": asdict(self.limits.zip),
                "max_text_chars": self.limits.max_text_chars,
            }
            try:
                write_frame(process.stdin, json.dumps(request).encode())
                write_frame(process.stdin, data)
                ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    self._stop()
                    return ParseOutcome(
                        None,
                        error_code=codes.PARSE_TIMEOUT,
                        error_message=f"Parsing took longer than {self.limits.timeout_seconds:.0f} s.",
                    )
                reply = json.loads(read_frame(process.stdout, reply_limit(self.limits.max_text_chars)))
                status, fmt = reply["status"], reply.get("format")
            except (EOFError, BrokenPipeError):
                exitcode = process.wait(5)
                self._stop()
                return ParseOutcome(
                    None,
                    error_code=codes.PARSE_RESOURCE_LIMIT,
                    error_message=f"The parser died (exit {exitcode}): memory or CPU limit.",
                )
            except (FrameTooLarge, ValueError, KeyError, TypeError) as exc:
                # Only a child that broke its own rules answers like this: it is not trusted again.
                self._stop()
                return ParseOutcome(
                    None, error_code=codes.TOO_LARGE, error_message=f"The parser's reply was refused: {exc}"
                )
        if status == "ok":
            text = reply.get("text")
            if not isinstance(text, str) or len(text) > self.limits.max_text_chars:
                return ParseOutcome(fmt, error_code=codes.TOO_LARGE, error_message="The parser's text was refused.")
            parsed = ParsedText(
                text=text,
                page_count=reply.get("page_count"),
                encoding=reply.get("encoding"),
                warnings=[str(w) for w in reply.get("warnings", [])][:1000],
            )
            return ParseOutcome(fmt, parsed=parsed)
        code, message = str(reply.get("code")), str(reply.get("message"))[:2000]
        if code == codes.PARSE_RESOURCE_LIMIT:
            self.close()  # a MemoryError may leave the child's heap fragmented; start afresh
        return ParseOutcome(fmt, error_code=code, error_message=message)


class ParsePool:
    """Up to `size` parse children shared by many threads: a document thread borrows one for its parse only, so
    a run can have many more documents in flight (waiting on the model) than parse children, each of which costs
    about a second of CPU to start. Children start when first needed."""

    def __init__(self, limits: ParseLimits, size: int):
        self.limits = limits
        self.size = max(1, size)
        self._free: Queue[ParseWorker] = Queue()
        self._all: list[ParseWorker] = []
        self._lock = threading.Lock()

    @contextmanager
    def worker(self) -> Iterator[ParseWorker]:
        try:
            worker = self._free.get_nowait()
        except Empty:
            with self._lock:
                made = ParseWorker(self.limits) if len(self._all) < self.size else None
                if made is not None:
                    self._all.append(made)
            worker = made if made is not None else self._free.get()
        try:
            yield worker
        finally:
            self._free.put(worker)

    def close(self) -> None:
        with self._lock:
            for worker in self._all:
                worker.close()
            self._all.clear()

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_in_child(data: bytes, limits: ParseLimits) -> ParseOutcome:
    """One-off convenience: parse a single document in a fresh child."""
    with ParseWorker(limits, max_tasks=1) as worker:
        return worker.parse(data)
