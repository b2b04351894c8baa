"""An expired continue token (HTTP 410 from the real kube-apiserver) makes the listing start
again from scratch, so a type's objects are one consistent list, read once each.

The 410 is the server's own: etcd is compacted through its JSON gateway, and the continue
token of a page is swapped for the same token at a compacted revision (what a token
becomes when a long listing outlives compaction; the apiserver's watch cache would
otherwise keep serving the real one for a while).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from strongroom.config.resources import KubernetesResource
from strongroom.errors import ChangedMeanwhileError
from strongroom.sources.base import JsonObject
from strongroom.sources.kubernetes.backup import RELISTS, list_objects
from strongroom.sources.kubernetes.client import KubeApi, KubeError, connect
from strongroom.sources.kubernetes.discovery import ResourceType
from tests.support.services import KubeService, unique_name

pytestmark = pytest.mark.integration

CONFIG_MAPS = ResourceType("", "v1", "configmaps", "ConfigMap", namespaced=True)
COUNT = 7


class ExpiringTokens(KubeApi):
    """The real API, with the continue token of the next ``expire`` page requests swapped
    for the same token at a compacted revision."""

    def __init__(self, api: KubeApi, *, expire: int) -> None:
        super().__init__(api.api_client, address=api.address, timeout=api.timeout)
        self.expire = expire
        self.expired: list[int] = []
        self.page_requests = 0

    def raw(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: JsonObject | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        query = dict(query or {})
        self.page_requests += 1
        if "continue" in query and len(self.expired) < self.expire:
            query["continue"] = _at_revision(query["continue"], 1)
            try:
                return super().raw(method, path, query=query, body=body)
            except KubeError as exc:
                self.expired.append(exc.status)
                raise
        return super().raw(method, path, query=query, body=body, content_type=content_type)


def _at_revision(token: str, revision: int) -> str:
    document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    document["rv"] = revision
    encoded = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(encoded).decode().rstrip("=")


def _compact(etcd_url: str) -> None:
    """Compact etcd at its current revision: every older revision is gone."""
    key = base64.b64encode(b"/").decode()
    header = httpx.post(f"{etcd_url}/v3/kv/range", json={"key": key}, timeout=30).json()
    revision = int(header["header"]["revision"])
    answer = httpx.post(
        f"{etcd_url}/v3/kv/compaction", json={"revision": revision, "physical": True}, timeout=60
    )
    # Compacting at a revision the apiserver compacted already is refused: also fine.
    assert answer.is_success or "compacted" in answer.text, answer.text


@pytest.fixture
def namespace(kube_service: KubeService) -> Iterator[tuple[KubeApi, str]]:
    settings = KubernetesResource.model_validate(
        {
            "type": "kubernetes",
            "kubeconfig": kube_service.kubeconfig,
            "context": kube_service.context,
        }
    )
    api = connect(settings, timeout=60)
    name = unique_name("sr-expired").replace("_", "-").lower()
    api.raw("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
    try:
        for index in range(COUNT):
            body: dict[str, Any] = {"metadata": {"name": f"cm-{index}"}, "data": {"n": str(index)}}
            api.raw("POST", f"/api/v1/namespaces/{name}/configmaps", body=body)
        _compact(kube_service.etcd_url)
        yield api, name
    finally:
        for index in range(COUNT):
            with contextlib.suppress(KubeError):
                api.raw("DELETE", f"/api/v1/namespaces/{name}/configmaps/cm-{index}")
        api.raw("DELETE", f"/api/v1/namespaces/{name}")
        api.close()


def test_an_expired_continue_token_lists_the_type_again_from_the_start(
    namespace: tuple[KubeApi, str],
) -> None:
    api, name = namespace
    expiring = ExpiringTokens(api, expire=2)

    items = list_objects(expiring, CONFIG_MAPS, namespace=name, page_size=2)

    assert expiring.expired == [410, 410]  # the server's answer to the compacted tokens
    names = [item["metadata"]["name"] for item in items]
    assert names == [f"cm-{index}" for index in range(COUNT)]  # each once, none lost
    assert {item["kind"] for item in items} == {"ConfigMap"}
    # Page one and an expired continue, twice over; then the four pages of seven objects.
    assert expiring.page_requests == 2 + 2 + 4


def test_a_list_that_keeps_expiring_fails_retryably_naming_the_type(
    namespace: tuple[KubeApi, str],
) -> None:
    api, name = namespace
    expiring = ExpiringTokens(api, expire=RELISTS + 1)

    with pytest.raises(ChangedMeanwhileError) as caught:
        list_objects(expiring, CONFIG_MAPS, namespace=name, page_size=3)

    assert caught.value.retryable
    assert f"list configmaps in namespace {name}" in str(caught.value)
    assert expiring.expired == [410] * (RELISTS + 1)
