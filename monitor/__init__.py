"""Travel-advisory change monitor: poll, snapshot, diff, classify, alert."""

from importlib import metadata

try:
    __version__ = metadata.version("advisory-monitor")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0"
