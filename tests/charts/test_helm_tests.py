"""The chart's `helm test` hooks (templates/tests/): a Pod per HTTP service that checks its
`/readyz` through its Service, one that checks the Kafka bootstrap listener's TLS, and the
NetworkPolicy that lets only that one through; and the check scripts (files/tests/) run here
against real servers. (The Kafka check against the brokers' real certificate is in
test_kafka_statefulset.py, beside the script that makes it.)"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from .manifests import CHART, PROFILES, STATEFULSET_PROFILES, Doc, find, one, render, validate

SCRIPTS = CHART / "files" / "tests"


def hook_docs(docs: list[Doc]) -> list[Doc]:
    """The documents that are `helm test` hooks."""
    return [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]


def check(pod: Doc) -> tuple[str, list[str]]:
    """(script, arguments) of a test Pod's one container: `python -c <script> <args>`."""
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["python", "-c"]
    return command[2], command[3:]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def workload_labels(docs: list[Doc]) -> dict[str, dict[str, str]]:
    """Pod labels of every workload that runs outside `helm test`."""
    out = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            out[doc["metadata"]["name"]] = doc["spec"]["template"]["metadata"]["labels"]
        elif doc["kind"] == "CronJob":
            out[doc["metadata"]["name"]] = doc["spec"]["jobTemplate"]["spec"]["template"][
                "metadata"
            ]["labels"]
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_every_service_has_a_readyz_test_through_its_service(profile):
    docs = render(profile)
    hooks = hook_docs(docs)
    pods = {d["metadata"]["name"]: d for d in hooks if d["kind"] == "Pod"}
    services = {s["metadata"]["name"]: s for s in find(docs, "Service")}
    deployments = find(docs, "Deployment")
    assert len(deployments) == 4
    readyz = (SCRIPTS / "readyz.py").read_text()
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = pods.pop(f"{name}-test-readyz")
        validate(pod)
        annotations = pod["metadata"]["annotations"]
        # kept after it ran (for `helm test --logs`), replaced by the next `helm test`
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
        script, args = check(pod)
        assert script == readyz
        # http://<the service's Service>:<its port>/readyz, the Service selecting the service
        url = args[0]
        host, port = url.removeprefix("http://").removesuffix("/readyz").split(":")
        service = services[host]
        template = deployment["spec"]["template"]
        assert selects(service["spec"]["selector"], template["metadata"]["labels"])
        assert [p["port"] for p in service["spec"]["ports"]] == [int(port)]
        assert url == f"http://{name}:{service['spec']['ports'][0]['port']}/readyz"
        assert args[1:] == ["--wait", "60"]
        # it runs in the service's own image: no image the release does not already run
        (test_container,) = pod["spec"]["containers"]
        assert test_container["image"] == template["spec"]["containers"][0]["image"]
        # no Service sends it traffic, and the service's NetworkPolicy lets it in
        labels = pod["metadata"]["labels"]
        assert not [s for s in services.values() if selects(s["spec"].get("selector", {}), labels)]
        policy = one(docs, "NetworkPolicy", name)
        assert any(
            selects(peer["podSelector"]["matchLabels"], labels)
            for rule in policy["spec"]["ingress"]
            if {"port": "http", "protocol": "TCP"} in rule["ports"]
            for peer in rule["from"]
            if "podSelector" in peer
        ), name
    assert list(pods) == ["iotpipe-test-kafka-tls"]  # and nothing else


@pytest.mark.parametrize("profile", PROFILES)
def test_kafka_test_dials_the_bootstrap_listener_with_the_cluster_ca(profile):
    docs = render(profile)
    pod = one(hook_docs(docs), "Pod", "iotpipe-test-kafka-tls")
    validate(pod)
    script, args = check(pod)
    assert script == (SCRIPTS / "kafka_tls.py").read_text()
    # the host and port every client is given (with either provider)
    simulator = one(docs, "Deployment", "iotpipe-sensor-simulator")["spec"]["template"]["spec"]
    env = {v["name"]: v.get("value") for v in simulator["containers"][0]["env"]}
    assert (
        f"{args[0]}:{args[1]}"
        == env["KAFKA_BOOTSTRAP_SERVERS"]
        == "iotpipe-kafka-bootstrap.iotpipe.svc:9093"
    )
    if profile in STATEFULSET_PROFILES:
        bootstrap = one(docs, "Service", "iotpipe-kafka-bootstrap")
        assert [p["port"] for p in bootstrap["spec"]["ports"]] == [9093]
    else:  # Strimzi names the bootstrap Service after the Kafka resource
        assert find(docs, "Kafka", "iotpipe")
    # the CA comes from the Secret the clients mount, read from where --cafile points
    (container,) = pod["spec"]["containers"]
    (mount,) = container["volumeMounts"]
    (volume,) = pod["spec"]["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["secret"]["secretName"] == "iotpipe-cluster-ca-cert"
    cafile = args[args.index("--cafile") + 1]
    (item,) = volume["secret"]["items"]
    assert cafile == f"{mount['mountPath']}/{item['path']}"
    assert item["key"] == "ca.crt"
    # its image is one the release runs already: the first service's
    assert container["image"] == simulator["containers"][0]["image"]
    assert container["resources"] == {
        "requests": {"cpu": "10m", "memory": "32Mi"},
        "limits": {"cpu": "200m", "memory": "96Mi"},
    }
    # without services it borrows the orchestrator's, and without either there is no check
    services_off = {
        f"{k}__enabled": False
        for k in ("sensorSimulator", "dlqInspector", "qualityGate", "warehouseLoader")
    }
    alone = one(render(profile, **services_off), "Pod", "iotpipe-test-kafka-tls")
    orchestrator = one(docs, "CronJob", "iotpipe-orchestrator-daily")["spec"]["jobTemplate"][
        "spec"
    ]["template"]["spec"]
    assert alone["spec"]["containers"][0]["image"] == orchestrator["containers"][0]["image"]
    assert not hook_docs(render(profile, orchestrator__enabled=False, **services_off))


@pytest.mark.parametrize("profile", PROFILES)
def test_only_the_kafka_test_is_let_through_to_the_brokers(profile):
    """Kafka's policy (Strimzi's networkPolicyPeers, or the chart's for the StatefulSet) admits
    pods with a Kafka user only; a hook NetworkPolicy, there only while `helm test` runs and
    created before the Pod, admits the test Pod and nothing else to the client listener."""
    docs = render(profile)
    hooks = hook_docs(docs)
    pod = one(hooks, "Pod", "iotpipe-test-kafka-tls")
    policy = one(hooks, "NetworkPolicy", "iotpipe-test-kafka-tls")
    validate(policy)
    weight = lambda d: int(d["metadata"]["annotations"]["helm.sh/hook-weight"])  # noqa: E731
    assert weight(policy) < weight(pod)
    if profile in STATEFULSET_PROFILES:
        brokers = one(docs, "StatefulSet", "iotpipe-kafka")["spec"]["template"]["metadata"][
            "labels"
        ]
        assert selects(policy["spec"]["podSelector"]["matchLabels"], brokers)
    else:  # the label Strimzi gives the Kafka resource's pods, which the PodMonitor selects too
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector == {"strimzi.io/name": "iotpipe-kafka"}
        for monitor in find(docs, "PodMonitor", "iotpipe-kafka"):
            assert monitor["spec"]["selector"]["matchLabels"] == selector
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": 9093, "protocol": "TCP"}]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}
    admitted = peer["podSelector"]["matchLabels"]
    assert selects(admitted, pod["metadata"]["labels"])
    assert not [name for name, labels in workload_labels(docs).items() if selects(admitted, labels)]
    assert not [
        d
        for d in hooks
        if d["kind"] == "Pod" and d is not pod and selects(admitted, d["metadata"]["labels"])
    ]


def test_values_turn_the_tests_off_with_what_they_test():
    assert len(hook_docs(render())) == 6  # 4 services, Kafka's Pod and its NetworkPolicy
    assert not hook_docs(render(tests__enabled=False))
    names = [d["metadata"]["name"] for d in hook_docs(render(warehouseLoader__enabled=False))]
    assert "iotpipe-warehouse-loader-test-readyz" not in names
    assert len(names) == 5
    assert {d["kind"] for d in hook_docs(render(kafka__enabled=False))} == {"Pod"}
    assert len(hook_docs(render(kafka__enabled=False))) == 4
    assert [d["kind"] for d in hook_docs(render(networkPolicy__enabled=False))].count(
        "NetworkPolicy"
    ) == 0
    pod = one(hook_docs(render(tests__waitSeconds=5)), "Pod", "iotpipe-test-kafka-tls")
    assert check(pod)[1][-2:] == ["--wait", "5"]
    assert pod["spec"]["activeDeadlineSeconds"] == 65


# ---- the scripts, run here ------------------------------------------------------------------


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    # as the Pod runs it: the file's text through `python -c`
    text = (SCRIPTS / name).read_text()
    return subprocess.run(
        [sys.executable, "-c", text, *args], capture_output=True, text=True, timeout=60, check=False
    )


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ready/readyz" else 503
        body = b'{"status":"ready"}' if status == 200 else b'{"waiting_for":["kafka"]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_readyz_script_passes_on_2xx_and_fails_with_the_answer_otherwise(http_server):
    ok = run_script("readyz.py", f"{http_server}/ready/readyz", "--wait", "0")
    assert ok.returncode == 0, ok.stderr
    assert '{"status":"ready"}' in ok.stdout
    waiting = run_script("readyz.py", f"{http_server}/waiting/readyz", "--wait", "1")
    assert waiting.returncode == 1
    assert "503" in waiting.stderr
    assert "kafka" in waiting.stderr  # what it waits for
    closed = run_script("readyz.py", "http://127.0.0.1:9/readyz", "--wait", "0")
    assert closed.returncode == 1
    assert "not ready" in closed.stderr


def test_scripts_have_help():
    for name in ("readyz.py", "kafka_tls.py"):
        result = run_script(name, "--help")
        assert result.returncode == 0, name
        assert "helm test" in result.stdout, name


@pytest.mark.parametrize("profile", PROFILES)
def test_helm_test_logs_finds_a_pod_for_every_hook(profile):
    """`helm test --logs` reads, after every hook ran, the logs of a Pod named after each test
    hook whatever its kind: every hook's name is a test Pod's, and the Pods are kept after they
    succeeded (replaced by the next `helm test`)."""
    hooks = hook_docs(render(profile))
    pods = {d["metadata"]["name"]: d for d in hooks if d["kind"] == "Pod"}
    assert {d["metadata"]["name"] for d in hooks} == set(pods)
    for pod in pods.values():
        policy = pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
        assert "hook-succeeded" not in policy.split(","), pod["metadata"]["name"]
