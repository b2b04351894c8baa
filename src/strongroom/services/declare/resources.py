"""How declared things (resources, rules) are stored in the catalog and read back.

A resource row keeps its whole configuration model as JSON in ``connection`` (secret
*references* only, never values), so every reader rebuilds the same pydantic model the
config file declared. This module is the one place that knows that representation.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from strongroom.catalog.models import Resource
from strongroom.catalog.resources import get_resource, upsert_resource
from strongroom.config.resources import ResourceConfig
from strongroom.errors import ConfigError, NotFoundError

_RESOURCE: TypeAdapter[Any] = TypeAdapter(ResourceConfig)


def config_hash(data: Any) -> str:
    """A stable SHA-256 of a JSON-able value (to tell whether a declaration changed)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def register_resource(session: Session, name: str, resource: Any, at: datetime) -> Resource:
    """Insert or update resource ``name`` from its configuration model; return the row."""
    data = resource.model_dump(mode="json")
    return upsert_resource(
        session,
        name=name,
        type=resource.type,
        at=at,
        tags=dict(resource.tags),
        connection=data,
        config_hash=config_hash(data),
    )


def resource_model(row: Resource) -> Any:
    """Rebuild the configuration model of a resource row (a ``ResourceConfig`` member)."""
    try:
        return _RESOURCE.validate_python(row.connection)
    except ValidationError as error:
        raise ConfigError(
            f"the catalog's record of resource {row.name!r} is not valid: {error}"
        ) from None


def resource_config(session: Session, name: str) -> Any:
    """Return the configuration model of resource ``name``; raises ``NotFoundError``."""
    try:
        row = get_resource(session, name)
    except NotFoundError as error:
        raise NotFoundError(
            f"no resource named {name!r}",
            hint="Declare it in a config file and run 'strongroom apply -f FILE'.",
        ) from error
    return resource_model(row)
