"""Secure defaults on every pod the chart renders, and secrets only ever referenced."""

from __future__ import annotations

import re

import pytest

from .manifests import PROFILES, STATEFULSET_PROFILES, find, one, pod_templates, render, spark_roles

SENSITIVE = re.compile(r"PASSWORD|TOKEN|SECRET|DSN|ACCESS_KEY", re.IGNORECASE)


def assert_container_secure(label: str, sc: dict) -> None:
    assert sc.get("runAsNonRoot") is True, f"{label}: runAsNonRoot"
    assert sc.get("allowPrivilegeEscalation") is False, f"{label}: allowPrivilegeEscalation"
    assert sc.get("readOnlyRootFilesystem") is True, f"{label}: readOnlyRootFilesystem"
    assert sc.get("privileged", False) is False, f"{label}: privileged"
    assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{label}: capabilities"
    assert "add" not in sc.get("capabilities", {}), f"{label}: adds capabilities"


def assert_pod_secure(label: str, psc: dict) -> None:
    assert psc.get("runAsNonRoot") is True, f"{label}: pod runAsNonRoot"
    assert psc.get("runAsUser", 0) > 0, f"{label}: pod runAsUser"
    assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{label}: seccomp"


def assert_resources(label: str, resources: dict) -> None:
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            assert resources.get(part, {}).get(what), f"{label}: no {part}.{what}"


def assert_env_references_secrets(label: str, env: list[dict]) -> None:
    for var in env:
        if SENSITIVE.search(var["name"]) and var["name"] != "KAFKA_SASL_USERNAME":
            assert "value" not in var, f"{label}: {var['name']} is inlined"
            assert "secretKeyRef" in var["valueFrom"], f"{label}: {var['name']}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_pod_runs_locked_down(profile):
    docs = render(profile)
    pods = list(pod_templates(docs))
    labels = {label for label, _ in pods}
    # 4 Deployments + the orchestrator's CronJobs (2; values-local turns the freshness check
    # off) + Kafka's StatefulSet and setup Job without Strimzi
    cronjobs = 1 if profile == "local" else 2
    assert len(pods) == 4 + cronjobs + (2 if profile in STATEFULSET_PROFILES else 0), labels
    if profile in STATEFULSET_PROFILES:
        assert {"StatefulSet/iotpipe-kafka", "Job/iotpipe-kafka-setup"} <= labels
    for label, pod in pods:
        job = label.startswith(("CronJob/", "Job/"))
        assert_pod_secure(label, pod["securityContext"])
        # Only the daily orchestrator run talks to the API server (SparkApplications).
        assert pod.get("automountServiceAccountToken") is (
            label == "CronJob/iotpipe-orchestrator-daily"
        ), label
        assert not pod.get("hostNetwork"), label
        assert not pod.get("hostPID"), label
        for container in pod["containers"] + pod.get("initContainers", []):
            name = f"{label}/{container['name']}"
            assert_container_secure(name, container["securityContext"])
            assert_resources(name, container["resources"])
            assert_env_references_secrets(name, container.get("env", []))
            # A run-to-completion job, and an init container, have no probes.
            if not job and container in pod["containers"]:
                assert container["livenessProbe"], name
                assert container["readinessProbe"], name
            assert not container["image"].endswith(":latest"), name
        # The writable places are explicit emptyDirs with a size limit.
        for volume in pod["volumes"]:
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), f"{label}: {volume['name']}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_spark_pod_runs_locked_down(profile):
    roles = list(spark_roles(render(profile)))
    assert len(roles) == 8  # bronze-stream + three schedules, driver and executor each
    for label, role in roles:
        assert_pod_secure(label, role["podSecurityContext"])
        assert_container_secure(label, role["securityContext"])
        for key in ("cores", "coreLimit", "memory"):
            assert role[key], f"{label}: {key}"
        assert role["serviceAccount"] == "iotpipe-spark", label
        assert_env_references_secrets(label, role["env"])


@pytest.mark.parametrize("profile", PROFILES)
def test_no_secret_is_rendered(profile):
    docs = render(profile)
    assert not find(docs, "Secret")
    # Every secret the pods read is one the operator (Strimzi), k8s/kafka-secrets.sh (the
    # StatefulSet Kafka's, under Strimzi's names) or the installer provides.
    refs = set()
    for _, pod in pod_templates(docs):
        for container in pod["containers"] + pod.get("initContainers", []):
            for var in container.get("env", []):
                if ref := var.get("valueFrom", {}).get("secretKeyRef"):
                    refs.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    refs.add((volume["secret"]["secretName"], item["key"]))
    if profile in STATEFULSET_PROFILES:
        users = {"iotpipe-sensor-simulator", "iotpipe-dlq-inspector", "iotpipe-spark"}
        kafka = {("iotpipe-cluster-ca-cert", "ca.crt"), ("iotpipe-kafka-tls", "keystore.pem")}
    else:
        users = {u["metadata"]["name"] for u in find(docs, "KafkaUser")}
        kafka = {("iotpipe-cluster-ca-cert", "ca.crt")}
    for name, key in refs:
        if name in users:
            assert key == "password"
        elif name.startswith("iotpipe-kafka") or name.startswith("iotpipe-cluster"):
            assert (name, key) in kafka
        else:
            assert name in {
                "iotpipe-api-tokens",
                "iotpipe-warehouse",
                "iotpipe-minio",
            }, f"unexpected secret {name}"
    assert kafka <= refs
    if profile in STATEFULSET_PROFILES:  # the brokers read every user's password (SCRAM)
        assert users <= {name for name, _ in refs}


def test_network_policies_cover_every_pod():
    docs = render()
    deny = [p for p in find(docs, "NetworkPolicy") if "ingress" not in p["spec"]]
    assert len(deny) == 1
    assert deny[0]["spec"]["policyTypes"] == ["Ingress"]
    selected = [p["spec"]["podSelector"]["matchLabels"] for p in find(docs, "NetworkPolicy")]
    for _, pod_labels in [
        (d["metadata"]["name"], d["spec"]["template"]["metadata"]["labels"])
        for d in find(docs, "Deployment")
    ]:
        matches = [s for s in selected if s.items() <= pod_labels.items()]
        assert len(matches) == 2  # the default deny and the service's own allow
    # Kafka's listener admits only pods labelled as Kafka clients, which are exactly the
    # pods that have a KafkaUser.
    listener = find(docs, "Kafka")[0]["spec"]["kafka"]["listeners"][0]
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == "scram-sha-512"
    peer = listener["networkPolicyPeers"][0]["podSelector"]["matchLabels"]
    clients = {
        d["metadata"]["name"]
        for d in find(docs, "Deployment")
        if peer.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    }
    assert clients == {"iotpipe-sensor-simulator", "iotpipe-dlq-inspector"}


def test_network_policies_of_the_statefulset_kafka():
    """Without Strimzi the chart's own policy does what Strimzi's networkPolicyPeers do:
    only this release's Kafka clients reach the SCRAM listener; the controller and
    replication listeners admit the brokers (and the setup Job's tools) alone."""
    docs = render("statefulset")
    policies = find(docs, "NetworkPolicy")
    pods = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["metadata"]["labels"]
        for d in find(docs, "StatefulSet") + find(docs, "Job")
    }
    for label, pod_labels in pods.items():
        matches = [
            p
            for p in policies
            if p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        ]
        # the default deny, and for the brokers their own policy (the Job takes no traffic)
        assert len(matches) == (2 if label.startswith("StatefulSet/") else 1), label
    rules = one(docs, "NetworkPolicy", "iotpipe-kafka")["spec"]["ingress"]

    def admitted(port: int) -> list[dict]:
        return [
            peer["podSelector"]["matchLabels"]
            for rule in rules
            if {"port": port, "protocol": "TCP"} in rule["ports"]
            for peer in rule["from"]
            if "podSelector" in peer
        ]

    clients = admitted(9093)
    assert clients == [{"iotpipe.io/kafka-client": "true", "app.kubernetes.io/instance": "iotpipe"}]
    labelled = {
        d["metadata"]["name"]
        for d in find(docs, "Deployment")
        if clients[0].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    }
    assert labelled == {"iotpipe-sensor-simulator", "iotpipe-dlq-inspector"}
    broker = pods["StatefulSet/iotpipe-kafka"]
    setup = pods["Job/iotpipe-kafka-setup"]
    assert all(sel.items() <= broker.items() for sel in admitted(9090))
    assert any(sel.items() <= setup.items() for sel in admitted(9091))
    assert not any(sel.items() <= setup.items() for sel in admitted(9090))
    assert {"port": 9404, "protocol": "TCP"} in rules[-1]["ports"]  # Prometheus, metrics on
