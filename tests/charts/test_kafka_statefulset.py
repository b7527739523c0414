"""kafka.provider: statefulset, the chart's own Kafka for clusters without Strimzi: the same
client contract as the Strimzi path, KRaft combined mode, SCRAM users, topics and ACLs from
the same values, and the Secrets k8s/kafka-secrets.sh makes for it."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from .manifests import CHART, REPO, find, one, render

STRIMZI_KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")
CLIENTS = ("iotpipe-sensor-simulator", "iotpipe-dlq-inspector", "iotpipe-spark")


def statefulset(**values: object) -> list[dict]:
    return render(kafka__provider="statefulset", **values)


def properties(text: str) -> dict[str, str]:
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def kafka_env(docs: list[dict]) -> dict[str, list[dict]]:
    """The Kafka client settings of every Kafka client: service containers and Spark roles."""
    out = {}
    for d in find(docs, "Deployment"):
        container = d["spec"]["template"]["spec"]["containers"][0]
        out[d["metadata"]["name"]] = [v for v in container["env"] if v["name"].startswith("KAFKA_")]
    for d in find(docs, "SparkApplication"):
        for role in ("driver", "executor"):
            env = d["spec"][role]["env"]
            out[f"{d['metadata']['name']}.{role}"] = [
                v for v in env if v["name"].startswith("KAFKA_")
            ]
    return out


def setup_steps(docs: list[dict]) -> list[list[str]]:
    """The setup Job's tool runs in order, each from its main class on."""
    pod = one(docs, "Job", "iotpipe-kafka-setup")["spec"]["template"]["spec"]
    steps = []
    for container in pod["initContainers"] + pod["containers"]:
        command = container["command"]
        assert command[0] == "java"
        assert command[command.index("-cp") + 1] == "/opt/kafka/libs/*"
        steps.append(command[command.index("-cp") + 2 :])
    return steps


def test_strimzi_resources_only_with_the_strimzi_provider():
    default = render()
    for kind in STRIMZI_KINDS:
        assert find(default, kind), kind
    assert not find(default, "StatefulSet")
    docs = statefulset()
    for kind in STRIMZI_KINDS:
        assert not find(docs, kind), kind
    assert one(docs, "StatefulSet", "iotpipe-kafka")
    # Strimzi's PodMonitors select Strimzi's pods; the brokers' own one selects the StatefulSet.
    assert {m["metadata"]["name"] for m in find(docs, "PodMonitor")} == {
        "iotpipe-spark",
        "iotpipe-kafka",
    }
    no_agent = statefulset(kafka__statefulset__metrics__jmxExporterJar="")
    assert {m["metadata"]["name"] for m in find(no_agent, "PodMonitor")} == {"iotpipe-spark"}
    assert not find(render(kafka__enabled=False, kafka__provider="statefulset"), "StatefulSet")


def test_clients_see_the_same_contract_with_either_provider():
    strimzi, own = render(), statefulset()
    assert kafka_env(own) == kafka_env(strimzi)
    assert kafka_env(own)["iotpipe-sensor-simulator"]  # not vacuous
    bootstrap = one(own, "Service", "iotpipe-kafka-bootstrap")["spec"]
    assert bootstrap["ports"] == [
        {"name": "tcp-clients", "port": 9093, "targetPort": "tcp-clients", "protocol": "TCP"}
    ]
    pod = one(own, "StatefulSet", "iotpipe-kafka")["spec"]["template"]
    assert bootstrap["selector"].items() <= pod["metadata"]["labels"].items()
    # The CA the clients mount is the one the brokers serve with.
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["ca"]["secret"]["secretName"] == "iotpipe-cluster-ca-cert"
    spark = one(own, "SparkApplication", "iotpipe-bronze-stream")["spec"]["volumes"]
    ca = next(v for v in spark if v["name"] == "kafka-ca")
    assert ca["secret"] == volumes["ca"]["secret"]


def test_brokers_are_kraft_combined_with_tls_scram_and_acls():
    docs = statefulset()
    config = one(docs, "ConfigMap", "iotpipe-kafka-config")["data"]
    assert sorted(k for k in config if k.startswith("server-")) == [
        "server-0.properties",
        "server-1.properties",
        "server-2.properties",
    ]
    hosts = [f"iotpipe-kafka-{i}.iotpipe-kafka-brokers.iotpipe.svc" for i in range(3)]
    for i in range(3):
        server = properties(config[f"server-{i}.properties"])
        assert server["process.roles"] == "broker,controller"
        assert server["node.id"] == str(i)
        assert server["controller.quorum.voters"] == ",".join(
            f"{n}@{host}:9090" for n, host in enumerate(hosts)
        )
        assert server["advertised.listeners"] == (
            f"REPLICATION://{hosts[i]}:9091,CLIENTS://{hosts[i]}:9093"
        )
        protocols = dict(p.split(":") for p in server["listener.security.protocol.map"].split(","))
        assert protocols == {"CONTROLLER": "SSL", "REPLICATION": "SSL", "CLIENTS": "SASL_SSL"}
        assert server["listener.name.clients.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert server["listener.name.controller.ssl.client.auth"] == "required"
        assert server["listener.name.replication.ssl.client.auth"] == "required"
        assert server["authorizer.class.name"] == (
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        )
        assert server["allow.everyone.if.no.acl.found"] == "false"
        assert server["super.users"] == "User:iotpipe-kafka"
        assert server["log.dirs"] == "/var/lib/kafka/data"
        assert server["offsets.topic.replication.factor"] == "3"  # kafka.config
    spec = one(docs, "StatefulSet", "iotpipe-kafka")["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == "iotpipe-kafka-brokers"
    headless = one(docs, "Service", "iotpipe-kafka-brokers")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    pod = spec["template"]["spec"]
    kafka = pod["containers"][0]
    # The broker's command, exactly (the contract with the iotpipe/kafka image).
    assert kafka["command"][0] == "java"
    assert kafka["command"][-4:] == [
        "-cp",
        "/opt/kafka/libs/*",
        "kafka.Kafka",
        "/etc/kafka/server.properties",
    ]
    mount = next(
        m for m in kafka["volumeMounts"] if m["mountPath"] == "/etc/kafka/server.properties"
    )
    assert mount["subPathExpr"] == "server-$(POD_INDEX).properties"
    index = next(v for v in kafka["env"] if v["name"] == "POD_INDEX")
    assert index["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    assert pod["securityContext"]["runAsUser"] == 1001
    claim = spec["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert {"name": "data", "mountPath": "/var/lib/kafka"} in kafka["volumeMounts"]


def test_storage_is_formatted_with_every_clients_scram_user():
    docs = statefulset()
    pod = one(docs, "StatefulSet", "iotpipe-kafka")["spec"]["template"]["spec"]
    (fmt,) = pod["initContainers"]
    command = fmt["command"]
    assert command[command.index("-cp") + 2 : command.index("-cp") + 4] == [
        "kafka.tools.StorageTool",
        "format",
    ]
    assert command[command.index("--cluster-id") + 1] == "aW90cGlwZS1rcmFmdC0wMQ"
    assert "--ignore-formatted" in command  # a formatted volume is left alone
    scram = [command[i + 1] for i, arg in enumerate(command) if arg == "--add-scram"]
    env = {
        v["name"]: v["valueFrom"]["secretKeyRef"]
        for v in fmt["env"]
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    users = {}
    for entry in scram:
        found = re.fullmatch(r"SCRAM-SHA-512=\[name=([\w-]+),password=\$\((\w+)\)\]", entry)
        assert found, entry
        users[found.group(1)] = env[found.group(2)]
    assert users == {name: {"name": name, "key": "password"} for name in CLIENTS}


def test_setup_job_makes_users_topics_and_acls_from_the_same_values():
    docs = statefulset()
    job = one(docs, "Job", "iotpipe-kafka-setup")
    hooks = job["metadata"]["annotations"]
    assert hooks["helm.sh/hook"] == "post-install,post-upgrade"
    assert "before-hook-creation" in hooks["helm.sh/hook-delete-policy"]
    steps = setup_steps(docs)
    for step in steps:
        assert step[1:5] == [
            "--bootstrap-server",
            ",".join(f"iotpipe-kafka-{i}.iotpipe-kafka-brokers.iotpipe.svc:9091" for i in range(3)),
            "--command-config",
            "/etc/kafka/admin.properties",
        ]
    # SCRAM users: an upsert per client.
    users = [s[s.index("--entity-name") + 1] for s in steps if "users" in s]
    assert users == list(CLIENTS)
    # Topics: every kafka.topics entry, created if missing, config applied on every run.
    created = {s[s.index("--topic") + 1]: s for s in steps if s[0].endswith("TopicCommand")}
    assert set(created) == {"sensor-events", "sensor-events-dlq", "sensor-events-dlq-replays"}
    for step in created.values():
        assert "--if-not-exists" in step
    events = created["sensor-events"]
    assert events[events.index("--partitions") + 1] == "3"
    assert "retention.ms=604800000" in events  # a whole number stays one
    # ACLs: exactly the KafkaUsers' ACLs of the Strimzi path.
    acls = set()
    for step in steps:
        if not step[0].endswith("AclCommand"):
            continue
        assert "--add" in step
        principal = step[step.index("--allow-principal") + 1].removeprefix("User:")
        ops = tuple(sorted(step[i + 1] for i, a in enumerate(step) if a == "--operation"))
        kinds = {"--topic": "topic", "--group": "group", "--transactional-id": "transactionalId"}
        kind = next((a for a in kinds if a in step), "--cluster")
        name = step[step.index(kind) + 1] if kind != "--cluster" else ""
        pattern = step[step.index("--resource-pattern-type") + 1]
        acls.add((principal, kinds.get(kind, "cluster"), name, pattern, ops))
    expected = set()
    for user in find(render(), "KafkaUser"):
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            pattern = "prefixed" if resource.get("patternType") == "prefix" else "literal"
            ops = tuple(sorted(acl["operations"]))
            expected.add(
                (user["metadata"]["name"], resource["type"], resource["name"], pattern, ops)
            )
    assert acls == expected
    assert len(acls) == 10


def test_one_broker_caps_replicas_and_min_isr():
    docs = statefulset(kafka__statefulset__replicas=1)
    server = properties(
        one(docs, "ConfigMap", "iotpipe-kafka-config")["data"]["server-0.properties"]
    )
    assert server["controller.quorum.voters"] == (
        "0@iotpipe-kafka-0.iotpipe-kafka-brokers.iotpipe.svc:9090"
    )
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "min.insync.replicas",
        "transaction.state.log.min.isr",
    ):
        assert server[key] == "1", key
    for step in setup_steps(docs):
        if step[0].endswith("TopicCommand"):
            assert step[step.index("--replication-factor") + 1] == "1"
            assert "min.insync.replicas=1" in step


def test_emptydir_storage_and_broker_metrics():
    docs = statefulset(kafka__statefulset__storage__type="emptyDir")
    spec = one(docs, "StatefulSet", "iotpipe-kafka")["spec"]
    assert "volumeClaimTemplates" not in spec
    data = next(v for v in spec["template"]["spec"]["volumes"] if v["name"] == "data")
    assert data["emptyDir"] == {"sizeLimit": "10Gi"}
    jar = "/opt/kafka/jmx_prometheus_javaagent.jar"  # the default: iotpipe/kafka ships it
    docs = statefulset()
    kafka = one(docs, "StatefulSet", "iotpipe-kafka")["spec"]["template"]["spec"]["containers"][0]
    assert f"-javaagent:{jar}=9404:/etc/kafka/jmx-exporter.yaml" in kafka["command"]
    assert {"name": "tcp-prometheus", "containerPort": 9404, "protocol": "TCP"} in kafka["ports"]
    monitor = one(docs, "PodMonitor", "iotpipe-kafka")["spec"]
    assert monitor["podMetricsEndpoints"][0]["port"] == "tcp-prometheus"
    assert monitor["selector"]["matchLabels"]["app.kubernetes.io/component"] == "kafka"
    assert "jmx-exporter.yaml" in one(docs, "ConfigMap", "iotpipe-kafka-config")["data"]


# ---- k8s/kafka-secrets.sh -------------------------------------------------------------------


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    """Run k8s/kafka-secrets.sh twice against a fake kubectl; the Secrets as folders."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    bin_dir, store = tmp_path / "bin", tmp_path / "secrets"
    bin_dir.mkdir()
    store.mkdir()
    kubectl = bin_dir / "kubectl"
    fake = Path(__file__).with_name("fake_kubectl.py")
    kubectl.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake}" "$@"\n')
    kubectl.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_KUBE": str(store), "HOME": str(tmp_path)}
    for _ in range(2):
        result = subprocess.run(
            [str(REPO / "k8s/kafka-secrets.sh")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("exists, kept") == 6  # the second run changed nothing
    return store


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_kafka_secrets_script_makes_what_the_chart_reads(secrets: Path):
    docs = statefulset()
    # Every Secret and key the chart's pods read exists, and nothing else is needed.
    read = set()
    for d in find(docs, "StatefulSet") + find(docs, "Job") + find(docs, "Deployment"):
        pod = d["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            for var in container.get("env", []):
                if ref := var.get("valueFrom", {}).get("secretKeyRef"):
                    read.add((ref["name"], ref["key"]))
        for volume in pod["volumes"]:
            for item in volume.get("secret", {}).get("items", []):
                read.add((volume["secret"]["secretName"], item["key"]))
    made = {(s.name, k.name) for s in secrets.iterdir() if s.is_dir() for k in s.iterdir()}
    kafka_read = {
        (n, k)
        for n, k in read
        if n.startswith("iotpipe-") and n not in ("iotpipe-api-tokens", "iotpipe-warehouse")
    }
    assert kafka_read <= made, kafka_read - made
    # Users: Strimzi's KafkaUser keys, a JAAS line that matches the password.
    for user in CLIENTS:
        password = (secrets / user / "password").read_text()
        assert re.fullmatch(r"[0-9a-f]{48}", password)
        assert (secrets / user / "sasl.jaas.config").read_text() == (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";'
        )
    # The brokers' certificate: signed by the CA the clients get, the super user's CN, and
    # a name for every address the clients and brokers dial.
    ca = secrets / "iotpipe-cluster-ca-cert" / "ca.crt"
    assert ca.read_bytes() == (secrets / "iotpipe-cluster-ca" / "ca.crt").read_bytes()
    cert = secrets / "iotpipe-kafka-tls" / "tls.crt"
    assert "OK" in openssl("verify", "-CAfile", str(ca), str(cert))
    subject = openssl("x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "RFC2253")
    super_user = properties(
        one(docs, "ConfigMap", "iotpipe-kafka-config")["data"]["server-0.properties"]
    )["super.users"]
    assert subject.strip() == f"subject=CN={super_user.removeprefix('User:')}"
    text = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName,extendedKeyUsage")
    sans = set(re.findall(r"DNS:([^,\s]+)", text))
    assert "TLS Web Server Authentication" in text
    assert "TLS Web Client Authentication" in text  # brokers also dial each other with it

    def covered(host: str) -> bool:
        return host in sans or any(
            s.startswith("*.") and host.split(".", 1)[1] == s[2:] for s in sans
        )

    bootstrap = next(
        v["value"]
        for v in kafka_env(docs)["iotpipe-sensor-simulator"]
        if v["name"] == "KAFKA_BOOTSTRAP_SERVERS"
    )
    assert covered(bootstrap.rsplit(":", 1)[0])
    config = one(docs, "ConfigMap", "iotpipe-kafka-config")["data"]
    for name, text in config.items():
        if name.startswith("server-"):
            for listener in properties(text)["advertised.listeners"].split(","):
                assert covered(listener.split("//")[1].rsplit(":", 1)[0]), listener
    keystore = (secrets / "iotpipe-kafka-tls" / "keystore.pem").read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, as Kafka's PEM store wants
    assert keystore.count("BEGIN CERTIFICATE") == 2  # the certificate, then the CA


def test_kafka_secrets_script_users_are_the_charts_clients():
    script = (REPO / "k8s/kafka-secrets.sh").read_text()
    found = re.search(r'USERS=\$\{KAFKA_USERS:-"([^"]+)"\}', script)
    assert found
    defaults = found.group(1).replace("$RELEASE", "iotpipe").split()
    assert sorted(defaults) == sorted(CLIENTS)
    users = {u["metadata"]["name"] for u in find(render(), "KafkaUser")}
    assert users == set(CLIENTS)


def serve_tls(keystore: Path | None) -> tuple[int, threading.Event]:
    """A listener on 127.0.0.1 that completes TLS handshakes with the brokers' keystore (key,
    certificate, CA: what the brokers load), or, without one, accepts and says nothing."""
    context = None
    if keystore is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(keystore)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(5)
                    try:
                        if context is not None:
                            context.wrap_socket(conn, server_side=True).close()
                        else:
                            conn.recv(1024)
                    except OSError:
                        pass  # the client gave up on our certificate

    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1], stop


def kafka_tls_check(port: int, cafile: Path, host: str = "iotpipe-kafka-bootstrap.iotpipe.svc"):
    """The helm test's check (files/tests/kafka_tls.py, as its Pod runs it), dialling here."""
    script = (CHART / "files" / "tests" / "kafka_tls.py").read_text()
    args = [host, str(port), "--cafile", str(cafile), "--address", "127.0.0.1", "--wait", "0"]
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_helm_tests_kafka_check_accepts_the_brokers_certificate_only(secrets: Path):
    """The check passes against the certificate kafka-secrets.sh makes for the brokers, under
    the bootstrap name every client dials, and fails for another name, another CA, or a
    listener that does not speak TLS."""
    ca = secrets / "iotpipe-cluster-ca-cert" / "ca.crt"
    keystore = secrets / "iotpipe-kafka-tls" / "keystore.pem"
    port, stop = serve_tls(keystore)
    try:
        ok = kafka_tls_check(port, ca)
        assert ok.returncode == 0, ok.stderr
        assert "certificate verified" in ok.stdout
        other_name = kafka_tls_check(port, ca, host="kafka.example.com")
        assert other_name.returncode == 1
        assert "CERTIFICATE_VERIFY_FAILED" in other_name.stderr
        leaf_as_ca = kafka_tls_check(port, secrets / "iotpipe-kafka-tls" / "tls.crt")
        assert leaf_as_ca.returncode == 1
    finally:
        stop.set()
    port, stop = serve_tls(None)
    try:
        plain = kafka_tls_check(port, ca)
        assert plain.returncode == 1
        assert "no TLS handshake" in plain.stderr
    finally:
        stop.set()
