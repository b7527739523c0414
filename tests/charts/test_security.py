"""Secure defaults on every pod the chart renders, and secrets only ever referenced."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from .manifests import (
    LOCAL_MANIFESTS,
    PROFILES,
    REPO,
    STATEFULSET_PROFILES,
    find,
    load_all,
    one,
    pod_templates,
    render,
    spark_apps,
    spark_pods,
    spark_roles,
)

SENSITIVE = re.compile(r"PASSWORD|TOKEN|SECRET|DSN|ACCESS_KEY", re.IGNORECASE)

# The Spark identities (values serviceAccounts.spark, .sparkTrainer, .sparkExecutor).
SPARK_DRIVER = "iotpipe-spark"
SPARK_TRAINER = "iotpipe-spark-trainer"
SPARK_EXECUTOR = "iotpipe-spark-executor"

# The restricted Pod Security Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
# which k8s/namespace.yaml enforces on namespace iotpipe: its checks, and baseline's under it.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


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


def restricted_violations(pod: dict) -> list[str]:
    """What the restricted profile (with baseline's checks) refuses in a pod spec; [] if none."""
    problems = []
    psc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(field)
    for volume in pod.get("volumes") or []:
        if not set(volume) - {"name"} <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(set(volume) - {'name'})}")
    if psc.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    for sysctl in psc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl['name']}")
    containers = [
        *(pod.get("containers") or []),
        *(pod.get("initContainers") or []),
        *(pod.get("ephemeralContainers") or []),
    ]
    if not containers:
        problems.append("no containers")
    for container in containers:
        name = container["name"]
        sc = container.get("securityContext") or {}

        def effective(field: str, sc: dict = sc) -> Any:
            return sc[field] if field in sc else psc.get(field)

        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{name}: does not drop ALL capabilities")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if effective("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if effective("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = effective("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp.get('type')}")
        apparmor = effective("appArmorProfile") or {}
        if apparmor.get("type", "RuntimeDefault") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: appArmorProfile {apparmor['type']}")
        selinux = effective("seLinuxOptions") or {}
        if (
            selinux.get("type", "") not in SELINUX_TYPES
            or selinux.get("user")
            or selinux.get("role")
        ):
            problems.append(f"{name}: seLinuxOptions {selinux}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount {sc['procMount']}")
        if (effective("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{name}: hostProcess")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems


def strimzi_pods(docs: list[dict]) -> list[tuple[str, dict]]:
    """(label, pod spec) of what Strimzi runs for the chart's Kafka resource: each container
    with the securityContext its template gives it (none: Strimzi's baseline provider sets
    none either), in a pod whose context is Strimzi's own (at most fsGroup 0). Its volumes
    are claims, emptyDirs, Secrets and ConfigMaps."""
    pods = []
    for kafka in find(docs, "Kafka"):
        spec = kafka["spec"]

        def container(name: str, template: dict | None, key: str) -> dict:
            return {
                "name": name,
                "securityContext": ((template or {}).get(key) or {}).get("securityContext"),
            }

        kafka_template = spec["kafka"].get("template")
        kafka_pod = [container("kafka", kafka_template, "kafkaContainer")]
        kafka_pod.append(container("kafka-init", kafka_template, "initContainer"))
        pods.append(("kafka", kafka_pod))
        operator = spec.get("entityOperator")
        if operator:
            template = operator.get("template")
            pods.append(
                (
                    "entity-operator",
                    [
                        container("topic-operator", template, "topicOperatorContainer"),
                        container("user-operator", template, "userOperatorContainer"),
                    ],
                )
            )
        exporter = spec.get("kafkaExporter")
        if exporter:
            pods.append(
                (
                    "kafka-exporter",
                    [container("kafka-exporter", exporter.get("template"), "container")],
                )
            )
    for pool in find(docs, "KafkaNodePool"):
        assert "template" not in pool["spec"], "a node pool template would replace the Kafka one"
    return [
        (f"Strimzi/{name}", {"securityContext": {"fsGroup": 0}, "containers": containers})
        for name, containers in pods
    ]


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
    # 4 Deployments + the orchestrator's CronJobs (3; values-local turns the freshness check
    # and the reconcile off) + Kafka's StatefulSet and setup Job without Strimzi + the helm
    # test Pods (one per service, one for Kafka)
    cronjobs = 1 if profile == "local" else 3
    kafka = 2 if profile in STATEFULSET_PROFILES else 0
    assert len(pods) == 4 + cronjobs + kafka + 5, labels
    if profile in STATEFULSET_PROFILES:
        assert {"StatefulSet/iotpipe-kafka", "Job/iotpipe-kafka-setup"} <= labels
    for label, pod in pods:
        job = label.startswith(("CronJob/", "Job/", "Pod/"))  # Pods: run-to-completion tests
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
        for volume in pod.get("volumes", []):
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
        assert_env_references_secrets(label, role["env"])


@pytest.mark.parametrize("profile", PROFILES)
def test_spark_drivers_and_executors_have_their_own_accounts(profile):
    """Executors run as iotpipe-spark-executor in every job; train_detector's driver as
    iotpipe-spark-trainer (the only one whose IAM role writes _models/), every other driver as
    iotpipe-spark."""
    apps = dict(spark_apps(render(profile)))
    assert len(apps) == 4
    trainers = set()
    for label, spec in apps.items():
        assert spec["executor"]["serviceAccount"] == SPARK_EXECUTOR, label
        training = spec["arguments"][0] == "train_detector"
        assert spec["driver"]["serviceAccount"] == (SPARK_TRAINER if training else SPARK_DRIVER), (
            label
        )
        if training:
            trainers.add(label)
    assert trainers == {"ScheduledSparkApplication/iotpipe-train-detector"}
    # A schedule added under another key that runs train_detector is a trainer too; the
    # account names follow the values.
    extra = render(
        profile,
        spark__medallion__retrain={
            "enabled": True,
            "job": "train_detector",
            "schedule": "0 3 * * *",
        },
        serviceAccounts__sparkExecutor__name="executors",
    )
    retrain = one(extra, "ScheduledSparkApplication", "iotpipe-retrain")["spec"]["template"]
    assert retrain["driver"]["serviceAccount"] == SPARK_TRAINER
    assert {
        role["serviceAccount"] for label, role in spark_roles(extra) if label.endswith(".executor")
    } == {"executors"}


def test_the_executor_account_has_no_token_and_no_rbac():
    """The executors' account mounts no API token and no RoleBinding (the chart's or
    spark-operator/rbac.yaml's) names it; the two driver accounts are exactly the subjects of
    the Spark Role's binding, and keep their token (a driver creates its executors)."""
    docs = render("eks")
    accounts = {sa["metadata"]["name"]: sa for sa in find(docs, "ServiceAccount")}
    assert accounts[SPARK_EXECUTOR]["automountServiceAccountToken"] is False
    for driver in (SPARK_DRIVER, SPARK_TRAINER):
        assert accounts[driver].get("automountServiceAccountToken", True) is True, driver
    rbac = load_all((REPO / "spark-operator/rbac.yaml").read_text())
    bindings = [d for d in docs + rbac if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for binding in bindings:
        names = {s["name"] for s in binding.get("subjects", []) if s["kind"] == "ServiceAccount"}
        assert SPARK_EXECUTOR not in names, binding["metadata"]["name"]
        assert not any(s["kind"] == "Group" for s in binding.get("subjects", [])), binding
    spark = one(rbac, "RoleBinding", "iotpipe-spark")
    assert spark["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "iotpipe-spark",
    }
    assert {(s["kind"], s["name"], s["namespace"]) for s in spark["subjects"]} == {
        ("ServiceAccount", SPARK_DRIVER, "iotpipe"),
        ("ServiceAccount", SPARK_TRAINER, "iotpipe"),
    }


def test_the_namespace_enforces_the_restricted_pod_security_standard():
    (namespace,) = load_all((REPO / "k8s/namespace.yaml").read_text())
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
    assert not any(k.endswith("-version") for k in labels), "latest: no pinned older version"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_pod_meets_the_restricted_pod_security_standard(profile):
    """Every pod that runs in namespace iotpipe: the chart's workloads, the Spark drivers and
    executors, what Strimzi runs for the Kafka resource, and the local MinIO and PostgreSQL."""
    docs = render(profile)
    pods = [*pod_templates(docs), *spark_pods(docs), *strimzi_pods(docs)]
    for name in LOCAL_MANIFESTS:
        pods += list(pod_templates(load_all((REPO / name).read_text())))
    labels = [label for label, _ in pods]
    assert (
        sum(
            label.startswith(("SparkApplication/", "ScheduledSparkApplication/"))
            for label in labels
        )
        == 8
    )
    strimzi = profile not in STATEFULSET_PROFILES
    assert any(label.startswith("Strimzi/") for label in labels) is strimzi, labels
    assert {"StatefulSet/postgres", "Deployment/minio"} <= set(labels)
    problems = {label: found for label, pod in pods if (found := restricted_violations(pod))}
    assert problems == {}


def test_the_restricted_check_catches_what_the_standard_refuses():
    """restricted_violations is not vacuous: a pod that only meets baseline, and each single
    relaxation of a compliant one, are refused."""
    good = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 185,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "c",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    assert restricted_violations(good) == []
    assert restricted_violations({"containers": [{"name": "c"}]}) == [
        "c: allowPrivilegeEscalation is not false",
        "c: does not drop ALL capabilities",
        "c: runAsNonRoot is not true",
        "c: seccompProfile None",
    ]

    def bad(change):
        pod = copy.deepcopy(good)
        change(pod)
        return restricted_violations(pod)

    container = lambda pod: pod["containers"][0]  # noqa: E731
    context = lambda pod: container(pod)["securityContext"]  # noqa: E731
    assert bad(lambda pod: pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}}))
    assert bad(lambda pod: pod.update(hostNetwork=True))
    assert bad(lambda pod: context(pod).update(runAsUser=0))
    assert bad(lambda pod: context(pod).update(runAsNonRoot=False))
    assert bad(lambda pod: context(pod).update(seccompProfile={"type": "Unconfined"}))
    assert bad(lambda pod: context(pod)["capabilities"].update(add=["NET_ADMIN"]))
    assert bad(lambda pod: context(pod).update(allowPrivilegeEscalation=True))
    assert bad(lambda pod: container(pod).update(ports=[{"containerPort": 80, "hostPort": 80}]))
    assert bad(lambda pod: pod.update(initContainers=[{"name": "init"}]))
    assert not bad(lambda pod: context(pod)["capabilities"].update(add=["NET_BIND_SERVICE"]))
    # Strimzi's containers without the chart's templates (its default baseline provider)
    docs = render()
    for kafka in find(docs, "Kafka"):
        del kafka["spec"]["kafka"]["template"]
    assert restricted_violations(dict(strimzi_pods(docs))["Strimzi/kafka"])


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
    # the policies in force (the helm test hook's exists only while `helm test` runs and lets
    # its own Pod in: test_helm_tests.py)
    policies = [
        p
        for p in find(docs, "NetworkPolicy")
        if "helm.sh/hook" not in p["metadata"].get("annotations", {})
    ]
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
