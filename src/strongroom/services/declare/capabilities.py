"""What this strongroom can run, for ``validate``, ``apply`` and ``create-plan`` to refuse the rest.

The resource types come from the source registry and the store schemes from
``storage.open``, so registering a source or serving a scheme lifts its refusal with no
edit here. Copy actions run (as copy jobs, between vaults of any served scheme).
"""

from __future__ import annotations

from strongroom.config.capabilities import Capabilities
from strongroom.sources import source_types
from strongroom.storage.open import SERVED_SCHEMES


def capabilities() -> Capabilities:
    """Return what can run: resource types with a source, served store schemes, copies."""
    return Capabilities(
        source_types=frozenset(source_types()),
        store_schemes=SERVED_SCHEMES,
        copy_actions=True,
    )
