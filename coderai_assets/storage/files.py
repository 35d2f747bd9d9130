"""File storage behind a small interface: uploaded originals and exports. Local disk for now."""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path


class FileStorage(ABC):
    @abstractmethod
    def write(self, key: str, data: bytes) -> str: ...

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Removes the file if it is there."""

    @abstractmethod
    def delete_tree(self, prefix: str) -> None:
        """Removes every file under the folder `prefix` (a workspace's, a project's), if it is there."""

    @abstractmethod
    def path(self, key: str) -> Path:
        """A local path for `key`, for libraries that write files (pandas, openpyxl)."""


class LocalFileStorage(FileStorage):
    def __init__(self, root: Path):
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if not target.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return target

    def write(self, key: str, data: bytes) -> str:
        target = self.path(key)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        # Readable by the owner alone: the parse child, dropped to another user, cannot read any tenant's files.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        tmp.replace(target)  # atomic: readers never see half a file
        return key

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        folder = self.path(prefix)
        if folder == self.root:
            raise ValueError("refusing to delete the storage root")
        if folder.exists():
            shutil.rmtree(folder)
