"""strongroom: self-hosted backup automation with encrypted, deduplicated vaults and proven restores."""

from typing import Any


def __getattr__(name: str) -> Any:
    # ``__version__`` is read from the installed metadata only when asked for:
    # importlib.metadata costs every CLI command ~0.1 s at start-up otherwise.
    if name != "__version__":
        raise AttributeError(f"module 'strongroom' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("strongroom")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"
