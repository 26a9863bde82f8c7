"""Writing a file so that a reader never sees half of it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from monitor.errors import MonitorError


def write_atomically(path: Path, text: str, *, what: str = "the file", mode: int = 0o644) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder, renamed
    over it; the folder is created. Raises :class:`MonitorError` naming ``what`` and the path."""
    target = path.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
        ) as tmp:
            tmp.write(text)
        written = Path(tmp.name)
        written.chmod(mode)
        written.replace(target)
    except OSError as exc:
        raise MonitorError(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
