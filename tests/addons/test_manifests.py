"""The cluster add-ons without a cluster (scripts/addons.sh, k8s/addons/): the manifests validate
strictly (custom resources against the CRDs the add-ons install), their images are the ones
`scripts/addons.sh images` builds and never pulled, the pods are locked down, CoreDNS answers only
cluster.local, Prometheus selects the pipeline's monitors, the Spark operator's release renders
from its Go module with spark-operator/values.yaml, and the chart's custom resources fit the
operator releases installed here."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import yaml

from tests.charts.manifests import (
    CHART,
    KUBERNETES_VERSION,
    PROFILES,
    REPO,
    Loader,
    _render,
    pod_templates,
)

from .manifests import MANIFESTS, Doc, addons, load, pinned, validate_installed

CLUSTER_DNS = "10.96.0.10"


def all_docs() -> list[Doc]:
    return [d for name in MANIFESTS for d in load(name)]


def containers(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for label, spec in pod_templates(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield f"{label}/{c['name']}", c


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Image name (repository without iotpipe/) -> the tag `scripts/addons.sh images` builds."""
    listed = addons("list-images").split()
    assert len(listed) == 6, listed
    return dict(i.removeprefix("iotpipe/").split(":", 1) for i in listed)


@pytest.mark.parametrize("name", MANIFESTS)
def test_addon_manifests_validate_strictly(name):
    docs = load(name)
    assert docs
    for doc in docs:
        validate_installed(doc)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "iotpipe-addons"


def test_images_are_the_built_ones_and_never_pulled(images):
    assert images["coredns"] == pinned("COREDNS_VERSION")
    assert images["prometheus-operator"] == pinned("PROMETHEUS_OPERATOR_VERSION")
    assert images["prometheus-config-reloader"] == pinned("PROMETHEUS_OPERATOR_VERSION")
    assert images["prometheus"] == pinned("PROMETHEUS_SERVER_VERSION")
    assert images["pushgateway"] == pinned("PUSHGATEWAY_VERSION")
    assert images["spark-operator"] == pinned("SPARK_OPERATOR_VERSION")
    docs = all_docs()
    used = {c["image"]: c for _, c in containers(docs)}
    assert set(used) == {
        f"iotpipe/coredns:{images['coredns']}",
        f"iotpipe/prometheus-operator:{images['prometheus-operator']}",
        f"iotpipe/pushgateway:{images['pushgateway']}",
    }
    for label, c in containers(docs):
        assert c["imagePullPolicy"] == "Never", label
    operator = next(c for label, c in containers(docs) if "prometheus-operator" in label)
    reloader = f"iotpipe/prometheus-config-reloader:{images['prometheus-config-reloader']}"
    assert f"--prometheus-config-reloader={reloader}" in operator["args"]
    (prometheus,) = [d for d in docs if d["kind"] == "Prometheus"]
    assert prometheus["spec"]["image"] == f"iotpipe/prometheus:{images['prometheus']}"
    assert prometheus["spec"]["version"] == images["prometheus"]
    assert prometheus["spec"]["imagePullPolicy"] == "Never"


def test_every_image_has_its_dockerfile(images):
    for name in images:
        dockerfile = REPO / "k8s" / "addons" / name / "Dockerfile"
        assert dockerfile.is_file(), name
    spark = (REPO / "k8s/addons/spark-operator/Dockerfile").read_text()
    # The controller runs spark-submit itself: the operator's image is the project's Spark image.
    assert "ARG SPARK=iotpipe/spark:dev\nFROM ${SPARK}\n" in spark
    for name in set(images) - {"spark-operator"}:
        text = (REPO / "k8s" / "addons" / name / "Dockerfile").read_text()
        assert "ARG BASE=iotpipe/debian:bookworm\nFROM ${BASE}\n" in text, name


def test_pods_are_locked_down():
    docs = all_docs()
    for label, spec in pod_templates(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, label
        assert spec["securityContext"]["runAsUser"] > 0, label
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", label
    for label, c in containers(docs):
        context = c["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, label
        assert context["readOnlyRootFilesystem"] is True, label
        assert context["capabilities"] == {"drop": ["ALL"]}, label
        assert c["resources"]["limits"], label
    (prometheus,) = [d for d in docs if d["kind"] == "Prometheus"]
    assert prometheus["spec"]["securityContext"]["runAsNonRoot"] is True


def corefile_directives() -> set[str]:
    """The plugin directives the cluster's Corefile uses (first word of each line in a block)."""
    (config,) = [d for d in load("coredns.yaml") if d["kind"] == "ConfigMap"]
    lines = config["data"]["Corefile"].splitlines()
    found, depth = set(), 0
    for line in (line.split("#", 1)[0].strip() for line in lines):
        if line and depth == 1 and not line.startswith("}"):
            found.add(line.split()[0])
        depth += line.count("{") - line.count("}")
    return found


PLUGIN_PACKAGES = {"prometheus": "metrics"}
"""Directives whose CoreDNS package has another name."""


def test_coredns_is_built_with_every_plugin_its_corefile_names():
    """scripts/tools.sh builds CoreDNS with only COREDNS_PLUGINS; a directive the Corefile
    adds without its plugin would stop CoreDNS at start-up ("unknown directive")."""
    found = re.search(r"^COREDNS_PLUGINS=\((.*)\)$", (REPO / "scripts/tools.sh").read_text(), re.M)
    assert found, "scripts/tools.sh has no COREDNS_PLUGINS"
    compiled = set(found.group(1).split())
    directives = corefile_directives()
    assert {"kubernetes", "health", "ready", "prometheus", "template"} <= directives
    assert {PLUGIN_PACKAGES.get(d, d) for d in directives} == compiled


def test_coredns_answers_only_the_cluster_domain():
    docs = load("coredns.yaml")
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    corefile = config["data"]["Corefile"]
    # No upstream: neither forward nor any resolver address; everything else is NXDOMAIN.
    assert not re.search(r"^\s*(forward|proxy|grpc)\b", corefile, re.MULTILINE)
    assert "/etc/resolv.conf" not in corefile
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in corefile
    blocks = re.findall(r"^(\S.*) \{$", corefile, re.MULTILINE)
    assert blocks == ["cluster.local:1053 in-addr.arpa:1053 ip6.arpa:1053", ".:1053"]
    rest = corefile.split(".:1053 {", 1)[1]
    assert re.search(r"template ANY ANY \{\s*rcode NXDOMAIN\s*\}", rest)
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["metadata"]["name"] == "kube-dns"
    assert service["spec"]["clusterIP"] == CLUSTER_DNS
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} >= {
        (53, "UDP"),
        (53, "TCP"),
    }
    # The address the kubelet hands to pods, and install's default, are this one.
    cluster = (REPO / "scripts/cluster.sh").read_text()
    assert f"\nCLUSTER_DNS={CLUSTER_DNS}\n" in cluster
    assert "clusterDomain: cluster.local" in cluster
    assert (
        'CLUSTER_DNS="${CLUSTER_DNS:-' + CLUSTER_DNS + '}"'
        in (REPO / "scripts/addons.sh").read_text()
    )
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} == {1053, 9153}


def test_prometheus_selects_every_monitor_and_rule_of_the_pipeline():
    (prometheus,) = [d for d in load("prometheus.yaml") if d["kind"] == "Prometheus"]
    spec = prometheus["spec"]
    assert prometheus["metadata"]["namespace"] == "monitoring"
    iotpipe = {"matchLabels": {"kubernetes.io/metadata.name": "iotpipe"}}
    for what in ("podMonitor", "rule"):
        assert spec[f"{what}NamespaceSelector"] == iotpipe, what
    # ServiceMonitors: the pipeline's, and the Pushgateway's in monitoring.
    (names,) = spec["serviceMonitorNamespaceSelector"]["matchExpressions"]
    assert names == {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": ["iotpipe", "monitoring"],
    }
    for what in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{what}Selector"] == {}, what  # every one, whatever its labels
    assert spec["serviceAccountName"] == "prometheus"
    operator = next(
        d for d in load("prometheus-operator/operator.yaml") if d["kind"] == "Deployment"
    )
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespaces=monitoring,iotpipe" in args


@pytest.fixture(scope="module")
def spark_operator() -> list[Doc]:
    text = addons("template-spark-operator", "--kube-version", f"{KUBERNETES_VERSION}.0")
    return [d for d in yaml.load_all(text, Loader=Loader) if d]


def test_spark_operator_release_renders_with_the_projects_values(spark_operator):
    kinds = {(d["kind"], d["metadata"]["name"]) for d in spark_operator}
    assert ("Deployment", "spark-operator-controller") in kinds
    assert ("Deployment", "spark-operator-webhook") in kinds
    assert ("MutatingWebhookConfiguration", "spark-operator-webhook") in kinds
    for doc in spark_operator:
        validate_installed(doc)
    version = pinned("SPARK_OPERATOR_VERSION")
    deployments = [d for d in spark_operator if d["kind"] == "Deployment"]
    for deployment in deployments:
        (c,) = deployment["spec"]["template"]["spec"]["containers"]
        assert c["image"] == f"docker.io/iotpipe/spark-operator:{version}"
        assert c["imagePullPolicy"] == "Never"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert "--namespaces=iotpipe" in c["args"]  # spark-operator/values.yaml's jobNamespaces
    controller = next(d for d in deployments if d["metadata"]["name"].endswith("-controller"))
    args = controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--controller-threads=4" in args
    assert "--enable-metrics=true" in args
    # The project's chart makes the jobs' service account and spark-operator/rbac.yaml its Role;
    # the operator's chart makes only its own (and its Roles in the job namespace).
    accounts = {d["metadata"]["name"] for d in spark_operator if d["kind"] == "ServiceAccount"}
    assert accounts == {"spark-operator-controller", "spark-operator-webhook"}
    in_jobs = {
        (d["kind"], d["metadata"]["name"])
        for d in spark_operator
        if d["metadata"].get("namespace") == "iotpipe"
    }
    assert in_jobs == {
        (kind, f"spark-operator-{part}")
        for kind in ("Role", "RoleBinding")
        for part in ("controller", "webhook")
    }


def chart_profiles() -> dict[str, tuple[str, ...]]:
    profiles = dict(PROFILES)
    if (CHART / "values-local.yaml").is_file():  # the values of this machine's cluster
        profiles["local"] = ("values-local.yaml",)
    return profiles


@pytest.mark.parametrize("profile", chart_profiles())
def test_chart_custom_resources_fit_the_installed_operators(profile):
    """The chart is validated against the newest CRDs (shared/crds); these are the releases the
    add-ons install, which must accept it too."""
    docs = [d for d in yaml.load_all(_render(chart_profiles()[profile], ()), Loader=Loader) if d]
    custom = [
        d
        for d in docs
        if d["apiVersion"].startswith(("monitoring.coreos.com/", "sparkoperator.k8s.io/"))
    ]
    assert any(d["kind"] == "SparkApplication" for d in custom)
    for doc in custom:
        validate_installed(doc)


def test_the_pushgateway_keeps_the_pushed_jobs_labels_and_admits_only_the_pipeline():
    docs = load("pushgateway.yaml")
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["namespace"] == "monitoring"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True  # job/instance of the pusher, not of the gateway
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["metadata"]["name"] == "pushgateway"
    assert [p["port"] for p in service["spec"]["ports"]] == [9091]
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchExpressions"][0]["values"] == ["iotpipe", "monitoring"]
    # The chart's local values push here.
    local = yaml.safe_load((REPO / "charts/iotpipe/values-local.yaml").read_text())
    assert local["monitoring"]["pushgatewayUrl"] == "http://pushgateway.monitoring:9091"
