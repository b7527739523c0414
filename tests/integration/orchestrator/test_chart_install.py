"""The chart installs into a real API server: every object it renders is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client, dynamic

from .conftest import PROFILES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_object_of_the_release_is_stored(
    releases: dict[str, list[dict[str, Any]]], kube: client.ApiClient, profile: str
) -> None:
    namespace, _ = PROFILES[profile]
    manifest = releases[profile]
    kinds = {doc["kind"] for doc in manifest}
    # The release is the whole system: services, Kafka, Spark, the orchestrator's CronJob.
    assert {
        "Deployment",
        "Kafka",
        "KafkaTopic",
        "SparkApplication",
        "ScheduledSparkApplication",
        "CronJob",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
    } <= kinds, kinds
    api = dynamic.DynamicClient(kube)
    missing = []
    for doc in manifest:
        resource = api.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        name = doc["metadata"]["name"]
        try:
            stored = resource.get(name=name, namespace=namespace if resource.namespaced else None)
        except dynamic.exceptions.NotFoundError:
            missing.append(f"{doc['kind']}/{name}")
            continue
        assert stored.metadata.annotations["meta.helm.sh/release-name"] == "iotpipe"
    assert not missing, f"not in the API server after helm install: {missing}"
