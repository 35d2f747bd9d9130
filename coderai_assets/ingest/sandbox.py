"""Parse documents in a child process held to memory, CPU and wall-clock limits (DESIGN.md 6).

The child is a plain `python -m coderai_assets.ingest.worker` process, reused for many documents
(imports cost about a second) and replaced after any failure it could not report itself, such as
being killed at the wall-clock limit or by the kernel at the memory limit.
"""

from __future__ import annotations

import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

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


def write_frame(stream, obj) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)


class ParseWorker:
    """One long-lived child process; `parse` never raises for a bad document, it returns a coded outcome."""

    def __init__(self, limits: ParseLimits, max_tasks: int = 200):
        self.limits = limits
        self.max_tasks = max_tasks
        self._process: subprocess.Popen[bytes] | None = None
        self._tasks = 0
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "coderai_assets.ingest.worker", str(self.limits.memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._tasks = 0
        return process

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
            try:
                write_frame(process.stdin, (data, self.limits.cpu_seconds, self.limits.zip))
                ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    self._stop()
                    return ParseOutcome(
                        None,
                        error_code=codes.PARSE_TIMEOUT,
                        error_message=f"Parsing took longer than {self.limits.timeout_seconds:.0f} s.",
                    )
                status, fmt, payload = read_frame(process.stdout)
            except (EOFError, BrokenPipeError, pickle.UnpicklingError):
                exitcode = process.wait(5)
                self._stop()
                return ParseOutcome(
                    None,
                    error_code=codes.PARSE_RESOURCE_LIMIT,
                    error_message=f"The parser died (exit {exitcode}): memory or CPU limit.",
                )
        if status == "ok":
            return ParseOutcome(fmt, parsed=payload)
        code, message = payload
        if code == codes.PARSE_RESOURCE_LIMIT:
            self.close()  # a MemoryError may leave the child's heap fragmented; start afresh
        return ParseOutcome(fmt, error_code=code, error_message=message)


def parse_in_child(data: bytes, limits: ParseLimits) -> ParseOutcome:
    """One-off convenience: parse a single document in a fresh child."""
    with ParseWorker(limits, max_tasks=1) as worker:
        return worker.parse(data)
