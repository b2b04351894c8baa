"""strongroom: self-hosted backup automation with encrypted, deduplicated vaults and proven restores."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("strongroom")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
