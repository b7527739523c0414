"""Values change what they should, and nothing else."""

from __future__ import annotations

import pytest

from .manifests import find, one, pod_templates, render, spark_pods

SERVICES = ("sensor-simulator", "dlq-inspector", "quality-gate", "warehouse-loader")
IRSA = "eks.amazonaws.com/role-arn"


def container(docs, service):
    return one(docs, "Deployment", f"iotpipe-{service}")["spec"]["template"]["spec"]["containers"][
        0
    ]


def env(docs, service):
    return {v["name"]: v for v in container(docs, service)["env"]}


# The services whose state is per process (a replay lock, verdicts in memory, a restart
# that marks running loads interrupted): one replica, replaced with Recreate.
SINGLE_REPLICA = ("dlq-inspector", "quality-gate", "warehouse-loader")


def test_replicas():
    default = render()
    assert {d["metadata"]["name"]: d["spec"]["replicas"] for d in find(default, "Deployment")} == {
        "iotpipe-sensor-simulator": 1,
        "iotpipe-dlq-inspector": 1,
        "iotpipe-quality-gate": 1,
        "iotpipe-warehouse-loader": 1,
    }
    changed = render(sensorSimulator__replicas=5)
    assert one(changed, "Deployment", "iotpipe-sensor-simulator")["spec"]["replicas"] == 5
    assert one(changed, "Deployment", "iotpipe-quality-gate")["spec"]["replicas"] == 1
    dev = render("dev")
    assert {d["spec"]["replicas"] for d in find(dev, "Deployment")} == {1}
    assert {p["spec"]["replicas"] for p in find(dev, "KafkaNodePool")} == {1}
    brokers = render(kafka__brokers__replicas=5)
    assert one(brokers, "KafkaNodePool", "brokers")["spec"]["replicas"] == 5
    assert one(brokers, "KafkaNodePool", "controllers")["spec"]["replicas"] == 3


def test_stateful_services_run_one_replica_with_recreate():
    """The DLQ inspector, the quality gate and the loader never run two pods at once, and
    their PodDisruptionBudget lets a drain evict the single pod instead of blocking it."""
    for profile in ("default", "dev", "eks"):
        docs = render(profile)
        for service in SINGLE_REPLICA:
            spec = one(docs, "Deployment", f"iotpipe-{service}")["spec"]
            assert spec["replicas"] == 1, (profile, service)
            assert spec["strategy"] == {"type": "Recreate"}, (profile, service)
        simulator = one(docs, "Deployment", "iotpipe-sensor-simulator")["spec"]["strategy"]
        assert simulator["type"] == "RollingUpdate"
        for pdb in find(docs, "PodDisruptionBudget"):
            assert pdb["spec"] == {
                "maxUnavailable": 1,
                "selector": pdb["spec"]["selector"],
            }, pdb["metadata"]["name"]


def test_resources_merge_over_the_defaults():
    docs = render(qualityGate__resources__limits__memory="5Gi")
    assert container(docs, "quality-gate")["resources"] == {
        "requests": {"cpu": "500m", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "5Gi"},
    }
    assert container(docs, "dlq-inspector")["resources"]["limits"]["memory"] == "512Mi"
    docs = render(serviceDefaults__resources__requests__cpu="300m")
    assert container(docs, "dlq-inspector")["resources"]["requests"]["cpu"] == "300m"
    assert container(docs, "quality-gate")["resources"]["requests"]["cpu"] == "500m"


def test_topic_partitions_and_config():
    docs = render()
    topics = {t["spec"]["topicName"]: t["spec"] for t in find(docs, "KafkaTopic")}
    assert set(topics) == {"sensor-events", "sensor-events-dlq", "sensor-events-dlq-replays"}
    assert topics["sensor-events"]["partitions"] == 3
    assert topics["sensor-events-dlq-replays"]["config"]["cleanup.policy"] == "compact"
    changed = render(kafka__topics__events__partitions=12)
    spec = one(changed, "KafkaTopic", "sensor-events")["spec"]
    assert spec["partitions"] == 12
    assert one(changed, "KafkaTopic", "sensor-events-dlq")["spec"]["partitions"] == 3
    dev = render("dev")
    assert {t["spec"]["replicas"] for t in find(dev, "KafkaTopic")} == {1}


def test_topic_names_flow_to_the_clients():
    docs = render(kafka__topics__dlq__name="dead-letters")
    assert one(docs, "KafkaTopic", "dead-letters")
    assert env(docs, "dlq-inspector")["KAFKA_DLQ_TOPIC"]["value"] == "dead-letters"
    user = one(docs, "KafkaUser", "iotpipe-dlq-inspector")
    assert "dead-letters" not in str(user)  # ACLs are data: changing a name means changing them


def test_irsa_annotations():
    default = render()
    for sa in find(default, "ServiceAccount"):
        assert IRSA not in sa["metadata"].get("annotations", {}), sa["metadata"]["name"]
    arn = "arn:aws:iam::123456789012:role/lake"
    changed = render(serviceAccounts__spark__roleArn=arn)
    assert one(changed, "ServiceAccount", "iotpipe-spark")["metadata"]["annotations"] == {IRSA: arn}
    eks = {
        sa["metadata"]["name"]: sa["metadata"].get("annotations", {}).get(IRSA)
        for sa in find(render("eks"), "ServiceAccount")
    }
    assert eks == {
        "iotpipe-spark": "arn:aws:iam::123456789012:role/iotpipe-spark",
        # the executors share the drivers' role; the trainer has its own (_models/)
        "iotpipe-spark-executor": "arn:aws:iam::123456789012:role/iotpipe-spark",
        "iotpipe-spark-trainer": "arn:aws:iam::123456789012:role/iotpipe-spark-trainer",
        "iotpipe-warehouse-loader": "arn:aws:iam::123456789012:role/iotpipe-warehouse-loader",
        "iotpipe-quality-gate": "arn:aws:iam::123456789012:role/iotpipe-quality-gate",
        "iotpipe-sensor-simulator": None,
        "iotpipe-dlq-inspector": None,
        # read-only, bronze/ only: the freshness check (its sink log, its partitions)
        "iotpipe-orchestrator": "arn:aws:iam::123456789012:role/iotpipe-orchestrator",
    }
    for key, name in (
        ("sparkExecutor", "iotpipe-spark-executor"),
        ("sparkTrainer", "iotpipe-spark-trainer"),
        ("orchestrator", "iotpipe-orchestrator"),
    ):
        changed = render(**{f"serviceAccounts__{key}__roleArn": arn})
        assert one(changed, "ServiceAccount", name)["metadata"]["annotations"] == {IRSA: arn}
    # Pods run as exactly these accounts.
    docs = render("eks")
    for service in SERVICES:
        pod = one(docs, "Deployment", f"iotpipe-{service}")["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == f"iotpipe-{service}"
    for label, pod in spark_pods(docs):
        assert eks[pod["serviceAccountName"]], f"{label}: its account has no IAM role"


def test_images_follow_registry_tag_and_digest():
    docs = render("eks", global__imageTag="abc123")
    assert container(docs, "dlq-inspector")["image"] == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iotpipe/dlq-inspector:abc123"
    )
    spark = one(docs, "SparkApplication", "iotpipe-bronze-stream")["spec"]["image"]
    assert spark == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iotpipe/spark:abc123"
    digest = "sha256:" + "a" * 64
    docs = render(dlqInspector__image__digest=digest, dlqInspector__image__tag="x")
    assert container(docs, "dlq-inspector")["image"] == f"iotpipe/dlq-inspector@{digest}"
    assert container(docs, "quality-gate")["image"] == "iotpipe/quality-gate:0.1.0"


def test_disabling_a_service_removes_all_of_it():
    docs = render(warehouseLoader__enabled=False)
    assert not [
        d
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "warehouse-loader"
    ]
    assert len(find(docs, "Deployment")) == 3


def test_kafka_users_and_acls():
    docs = render()
    users = {u["metadata"]["name"]: u for u in find(docs, "KafkaUser")}
    assert set(users) == {"iotpipe-sensor-simulator", "iotpipe-dlq-inspector", "iotpipe-spark"}
    topics = {t["spec"]["topicName"] for t in find(docs, "KafkaTopic")}
    for name, user in users.items():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "iotpipe"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        for acl in user["spec"]["authorization"]["acls"]:
            if acl["resource"]["type"] == "topic":
                assert acl["resource"]["name"] in topics, (name, acl)
    simulator = users["iotpipe-sensor-simulator"]["spec"]["authorization"]["acls"]
    assert simulator == [
        {
            "resource": {"type": "topic", "name": "sensor-events"},
            "operations": ["Write", "Describe"],
        },
        {  # a transactional run's producer: sensor-simulator-<run id>
            "resource": {
                "type": "transactionalId",
                "name": "sensor-simulator",
                "patternType": "prefix",
            },
            "operations": ["Write", "Describe"],
        },
    ]
    # A service without ACLs gets no Kafka user and no Kafka credentials.
    assert "KAFKA_SASL_PASSWORD" not in env(docs, "warehouse-loader")
    sasl = env(docs, "sensor-simulator")
    assert sasl["KAFKA_SASL_USERNAME"]["value"] == "iotpipe-sensor-simulator"
    assert sasl["KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    assert sasl["KAFKA_BOOTSTRAP_SERVERS"]["value"] == "iotpipe-kafka-bootstrap.iotpipe.svc:9093"
    assert sasl["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "iotpipe-sensor-simulator",
        "key": "password",
    }


def test_kafka_cluster_is_kraft_with_node_pools():
    docs = render()
    kafka = one(docs, "Kafka", "iotpipe")
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert "kafkaExporter" in kafka["spec"]
    roles = {p["metadata"]["name"]: p["spec"]["roles"] for p in find(docs, "KafkaNodePool")}
    assert roles == {"controllers": ["controller"], "brokers": ["broker"]}
    assert (
        "kafkaExporter"
        not in one(render(kafka__exporter__enabled=False), "Kafka", "iotpipe")["spec"]
    )
    assert not find(render(kafka__enabled=False), "Kafka")


def test_spark_applications():
    docs = render()
    stream = one(docs, "SparkApplication", "iotpipe-bronze-stream")["spec"]
    assert stream["restartPolicy"]["type"] == "Always"
    assert stream["arguments"] == ["bronze_stream"]
    assert stream["sparkVersion"] == "4.1.3"
    assert stream["driver"]["ports"] == [
        {"name": "jmx-metrics", "containerPort": 8090, "protocol": "TCP"},
        {"name": "stream-metrics", "containerPort": 9108, "protocol": "TCP"},
    ]
    driver_env = {v["name"]: v.get("value") for v in stream["driver"]["env"]}
    assert driver_env["BRONZE_METRICS_PORT"] == "9108"
    assert [p["name"] for p in stream["executor"]["ports"]] == ["jmx-metrics"]
    assert stream["sparkConf"]["spark.python.daemon.module"] == "iotpipe.spark_daemon"
    # one task per executor core
    bigger = render(spark__executor__instances=3, spark__executor__cores=2)
    bigger_env = one(bigger, "SparkApplication", "iotpipe-bronze-stream")["spec"]["driver"]["env"]
    assert {v["name"]: v.get("value") for v in bigger_env}["BRONZE_TASKS"] == "6"
    schedules = {s["metadata"]["name"]: s["spec"] for s in find(docs, "ScheduledSparkApplication")}
    assert set(schedules) == {
        "iotpipe-bronze-to-silver",
        "iotpipe-silver-to-gold",
        "iotpipe-train-detector",
    }
    for spec in schedules.values():
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["template"]["restartPolicy"]["type"] == "OnFailure"
    assert schedules["iotpipe-bronze-to-silver"]["template"]["arguments"][0] == "bronze_to_silver"
    assert schedules["iotpipe-train-detector"]["template"]["arguments"] == [
        "train_detector",
        "--window",
        "previous-day",
    ]
    changed = render(
        spark__executor__instances=7, spark__medallion__silverToGold__schedule="0 3 * * *"
    )
    assert (
        one(changed, "SparkApplication", "iotpipe-bronze-stream")["spec"]["executor"]["instances"]
        == 7
    )
    assert (
        one(changed, "ScheduledSparkApplication", "iotpipe-silver-to-gold")["spec"]["schedule"]
        == "0 3 * * *"
    )
    dev = one(render("dev"), "SparkApplication", "iotpipe-bronze-stream")["spec"]
    assert dev["sparkConf"]["spark.hadoop.fs.s3a.endpoint"] == "http://minio.iotpipe.svc:9000"
    assert "javaagent" not in dev["driver"]["javaOptions"]  # values-dev: spark.monitoring off
    assert "ports" not in dev["executor"]


def test_warehouse_settings():
    eks = env(render("eks"), "warehouse-loader")
    assert eks["LOADER_DIALECT"]["value"] == "redshift"
    assert (
        eks["LOADER_REDSHIFT_IAM_ROLE"]["value"]
        == "arn:aws:iam::123456789012:role/iotpipe-redshift-copy"
    )
    assert eks["LOADER_WAREHOUSE_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "iotpipe-warehouse",
        "key": "dsn",
    }
    assert eks["LOADER_QUALITY_GATE_URL"]["value"] == "http://iotpipe-quality-gate:8000"
    assert eks["LAKE_ROOT"]["value"] == "s3a://iotpipe-lake-123456789012/lake"
    dev = env(render("dev"), "warehouse-loader")
    assert dev["LOADER_DIALECT"]["value"] == "postgresql"
    assert "LOADER_REDSHIFT_IAM_ROLE" not in dev
    assert dev["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "iotpipe-minio"


def test_monitoring_ships_the_rules_and_dashboards_and_can_be_turned_off():
    docs = render()
    assert find(docs, "PrometheusRule"), "the alert rules ship by default"
    assert [c for c in find(docs, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    off = render(monitoring__rules__enabled=False, monitoring__dashboards__enabled=False)
    assert not find(off, "PrometheusRule")
    assert not [c for c in find(off, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    monitors = {m["metadata"]["name"] for m in find(docs, "ServiceMonitor")}
    assert monitors == {f"iotpipe-{s}" for s in SERVICES}
    assert {m["metadata"]["name"] for m in find(docs, "PodMonitor")} == {
        "iotpipe-kafka",
        "iotpipe-kafka-exporter",
        "iotpipe-spark",
    }


def test_monitoring_values_add_rules_and_dashboards_after_the_shipped_ones():
    from .manifests import validate

    rule = {"alert": "BronzeStreamDown", "expr": "up == 0", "for": "5m"}
    docs = render(
        monitoring__rules__groups=[{"name": "mine", "rules": [rule]}],
        monitoring__dashboards__files={"pipeline.json": '{"title": "Pipeline"}'},
    )
    prometheus_rule = one(docs, "PrometheusRule", "iotpipe")
    validate(prometheus_rule)
    groups = prometheus_rule["spec"]["groups"]
    assert len(groups) > 1
    assert groups[-1] == {"name": "mine", "rules": [rule]}
    dashboard = one(docs, "ConfigMap", "iotpipe-dashboard-pipeline")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["pipeline.json"] == '{"title": "Pipeline"}'


def test_terraform_outputs_feed_the_chart(tmp_path):
    """The values Terraform writes (terraform/helm_values.py, on the recorded `tofu output
    -json` of tests/terraform/outputs.json) are accepted by the chart's schema and land where
    the contract says."""
    import importlib.util
    import json

    from .manifests import REPO, _render, load_all, validate

    spec = importlib.util.spec_from_file_location("helm_values", REPO / "terraform/helm_values.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outputs = json.loads((REPO / "tests/terraform/outputs.json").read_text())
    values = module.helm_values(outputs)
    path = tmp_path / "values-terraform.yaml"
    path.write_text(module.render(values, "tests/terraform/outputs.json"))
    docs = load_all(_render(("values-eks.yaml", str(path)), ()))
    for doc in docs:
        validate(doc)
    accounts = {sa["metadata"]["name"]: sa for sa in find(docs, "ServiceAccount")}
    for key, account in values["serviceAccounts"].items():
        annotations = accounts[account["name"]]["metadata"]["annotations"]
        assert annotations[IRSA] == account["roleArn"], key
    registry = values["global"]["imageRegistry"]
    assert container(docs, "dlq-inspector")["image"].startswith(
        f"{registry}/iotpipe/dlq-inspector:"
    )
    loader = env(docs, "warehouse-loader")
    assert loader["LAKE_ROOT"]["value"] == values["lake"]["root"]
    assert (
        loader["LOADER_REDSHIFT_IAM_ROLE"]["value"]
        == values["warehouse"]["redshift"]["copyRoleArn"]
    )


def terraform_spot_pool() -> tuple[dict[str, str], tuple[str, str]]:
    """The spot node group as Terraform makes it (terraform/modules/eks): its taint as a
    Kubernetes toleration would name it, and its node label (key, value)."""
    import re

    from .manifests import REPO

    eks = REPO / "terraform/modules/eks"
    variables = (eks / "variables.tf").read_text()

    def default(name: str) -> str:
        found = re.search(
            rf'variable "{name}" {{[^}}]*?default\s*=\s*"([^"]+)"', variables, re.DOTALL
        )
        assert found, f"no default for {name} in {eks}/variables.tf"
        return found.group(1)

    main = (eks / "main.tf").read_text()
    pool = re.search(r"spark-spot = \{(.*?)\n    \}", main, re.DOTALL)
    assert pool, "no spark-spot node pool in terraform/modules/eks/main.tf"
    taint = re.search(
        r"taints\s*=\s*\[\{\s*key\s*=\s*var\.(\w+),\s*value\s*=\s*\"([^\"]*)\","
        r"\s*effect\s*=\s*\"(\w+)\"\s*\}\]",
        pool.group(1),
    )
    assert taint, "the spark-spot pool's taint is not in the expected form"
    # The EKS API spells effects NO_SCHEDULE; Kubernetes spells them NoSchedule.
    effect = "".join(part.capitalize() for part in taint.group(3).split("_"))
    toleration = {
        "key": default(taint.group(1)),
        "operator": "Equal",
        "value": taint.group(2),
        "effect": effect,
    }
    assert "(var.pool_label_key) = each.key" in main
    return toleration, (default("pool_label_key"), "spark-spot")


def test_spark_executors_tolerate_terraforms_spot_taint():
    toleration, (label, pool) = terraform_spot_pool()
    assert toleration == {
        "key": "iotpipe.io/spot",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    }  # what the parser found, spelt out (the chart must equal it)
    docs = render()
    apps = [("SparkApplication", d["spec"]) for d in find(docs, "SparkApplication")]
    apps += [
        ("ScheduledSparkApplication", d["spec"]["template"])
        for d in find(docs, "ScheduledSparkApplication")
    ]
    assert len(apps) == 4
    for kind, spec in apps:
        executor, driver = spec["executor"], spec["driver"]
        assert executor["tolerations"] == [toleration], kind
        preferred = executor["affinity"]["nodeAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        assert preferred[0]["preference"]["matchExpressions"] == [
            {"key": label, "operator": "In", "values": [pool]}
        ], kind
        # Nothing is required: executors still schedule where there is no spot node.
        assert (
            "requiredDuringSchedulingIgnoredDuringExecution"
            not in executor["affinity"]["nodeAffinity"]
        )
        # Drivers must not be interrupted: they stay off the spot group.
        assert "tolerations" not in driver, kind
    changed = render(spark__executor__tolerations=[], spark__driver__nodeSelector={label: "system"})
    stream = one(changed, "SparkApplication", "iotpipe-bronze-stream")["spec"]
    assert "tolerations" not in stream["executor"]
    assert stream["driver"]["nodeSelector"] == {label: "system"}


def test_spark_jmx_exporter_is_wired_to_its_config_and_the_pod_monitor():
    """Every driver and executor runs the image's JMX exporter agent with the rules the chart
    ships in a ConfigMap, on the port the Spark PodMonitor scrapes."""
    import re

    import yaml

    from .manifests import CHART

    docs = render()
    configmap = one(docs, "ConfigMap", "iotpipe-spark-metrics")
    shipped = (CHART / "files/observability/spark/jmx-exporter.yaml").read_text()
    assert yaml.safe_load(configmap["data"]["jmx-exporter.yaml"]) == yaml.safe_load(shipped)
    monitor = one(docs, "PodMonitor", "iotpipe-spark")["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in monitor] == ["jmx-metrics", "stream-metrics"]
    apps = [d["spec"] for d in find(docs, "SparkApplication")]
    apps += [d["spec"]["template"] for d in find(docs, "ScheduledSparkApplication")]
    assert len(apps) == 4
    for spec in apps:
        # The operator's own monitoring block would attach a second agent on the same port.
        assert "monitoring" not in spec
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["spark-metrics"]["configMap"]["name"] == "iotpipe-spark-metrics"
        assert spec["sparkConf"]["spark.metrics.conf.*.sink.jmx.class"] == (
            "org.apache.spark.metrics.sink.JmxSink"
        )
        assert spec["sparkConf"]["spark.metrics.namespace"] == "${spark.app.name}"
        assert spec["sparkConf"]["spark.sql.streaming.metricsEnabled"] == "true"
        for role in ("driver", "executor"):
            agent = re.search(r"-javaagent:(\S+)=(\d+):(\S+)", spec[role]["javaOptions"])
            assert agent, role
            jar, port, config = agent.groups()
            assert jar == "/opt/iotpipe/jmx_prometheus_javaagent.jar"
            mount = next(m for m in spec[role]["volumeMounts"] if m["name"] == "spark-metrics")
            assert config == f"{mount['mountPath']}/jmx-exporter.yaml"
            ports = {p["name"]: p["containerPort"] for p in spec[role]["ports"]}
            assert ports["jmx-metrics"] == int(port) == 8090, role
            assert "-XX:-DontCompileHugeMethods" in spec[role]["javaOptions"]
    # The port follows the value, everywhere.
    moved = render(spark__monitoring__port=9400)
    stream = one(moved, "SparkApplication", "iotpipe-bronze-stream")["spec"]
    assert "=9400:" in stream["executor"]["javaOptions"]
    assert {"name": "jmx-metrics", "containerPort": 9400, "protocol": "TCP"} in stream["driver"][
        "ports"
    ]
    policy = one(moved, "NetworkPolicy", "iotpipe-spark")["spec"]["ingress"][1]
    assert {"port": 9400, "protocol": "TCP"} in policy["ports"]
    off = render(spark__monitoring__enabled=False)
    assert not find(off, "ConfigMap", "iotpipe-spark-metrics")
    monitor = one(off, "PodMonitor", "iotpipe-spark")["spec"]["podMetricsEndpoints"]
    assert [e["port"] for e in monitor] == ["stream-metrics"]


def cpu_millis(value: str | int | float) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def test_local_values_fit_the_single_node_cluster():
    """values-local.yaml: the project's own cluster (2 CPUs, no Strimzi, no S3, no registry)."""
    import yaml

    from .manifests import REPO

    docs = render("local")
    assert not find(docs, "Kafka")
    assert one(docs, "StatefulSet", "iotpipe-kafka")["spec"]["replicas"] == 1
    # One replica of everything; images loaded into the node, never pulled.
    assert {d["spec"]["replicas"] for d in find(docs, "Deployment")} == {1}
    policies = set()
    for _, pod in pod_templates(docs):
        for container in pod["containers"] + pod.get("initContainers", []):
            policies.add(container["imagePullPolicy"])
            assert container["image"].endswith(":dev"), container["image"]
    for _, spec in spark_specs(docs):
        policies.add(spec["imagePullPolicy"])
        assert spec["image"] == "iotpipe/spark:dev"
    assert policies == {"Never"}
    # The warehouse is the in-cluster PostgreSQL.
    loader = env(docs, "warehouse-loader")
    assert loader["LOADER_DIALECT"]["value"] == "postgresql"
    assert (
        loader["LOADER_WAREHOUSE_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "iotpipe-warehouse"
    )
    # What runs all the time, with PostgreSQL (k8s/postgres.yaml) and one medallion job at a
    # time beside the stream, asks for less than 1.8 of the node's 2 CPUs.
    total = 0.0
    for d in find(docs, "Deployment") + find(docs, "StatefulSet"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            total += cpu_millis(c["resources"]["requests"]["cpu"])
    postgres = next(
        d
        for d in yaml.safe_load_all((REPO / "k8s/postgres.yaml").read_text())
        if d["kind"] == "StatefulSet"
    )
    total += cpu_millis(
        postgres["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    )
    stream = one(docs, "SparkApplication", "iotpipe-bronze-stream")["spec"]
    job = find(docs, "ScheduledSparkApplication")[0]["spec"]["template"]
    for spec in (stream, job):
        total += cpu_millis(spec["driver"]["coreRequest"])
        total += spec["executor"]["instances"] * cpu_millis(spec["executor"]["coreRequest"])
    assert total < 1800, f"{total:.0f}m of CPU requested"


def spark_specs(docs):
    for d in find(docs, "SparkApplication"):
        yield d["metadata"]["name"], d["spec"]
    for d in find(docs, "ScheduledSparkApplication"):
        yield d["metadata"]["name"], d["spec"]["template"]


def test_a_lake_on_a_volume_is_mounted_wherever_the_lake_is_used():
    """lake.volumeClaim: the lake is a folder (LAKE_ROOT a path) on one claim, mounted at that
    path in every pod that gets LAKE_ROOT, Spark's drivers and executors included."""
    from .manifests import HelmError

    docs = render("local")
    root = "/var/lib/iotpipe/lake"
    users = 0
    for label, pod in pod_templates(docs):
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod.get("volumes", [])
            if "persistentVolumeClaim" in v
        }
        for container in pod["containers"]:
            lake = {v["name"]: v.get("value") for v in container.get("env", [])}.get("LAKE_ROOT")
            if lake is None:
                continue
            users += 1
            assert lake == root, label
            mount = next(m for m in container["volumeMounts"] if m["mountPath"] == root)
            assert claims[mount["name"]] == "iotpipe-lake", label
            assert not mount.get("readOnly"), label
    assert users == 5  # the four services and the orchestrator's daily run (freshness is off)
    for name, spec in spark_specs(docs):
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        for role in ("driver", "executor"):
            lake = {v["name"]: v.get("value") for v in spec[role]["env"]}["LAKE_ROOT"]
            assert lake == root, (name, role)
            mount = next(m for m in spec[role]["volumeMounts"] if m["mountPath"] == root)
            assert claims[mount["name"]] == "iotpipe-lake", (name, role)
    # On S3 nothing is mounted.
    for _, spec in spark_specs(render()):
        assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    # A lake on a volume is a path (bronze_stream makes folders under LAKE_ROOT with pathlib).
    for bad in ("s3a://iotpipe-lake/lake", "file:///lake"):
        with pytest.raises(HelmError, match="lake/root"):
            render(lake__volumeClaim="iotpipe-lake", lake__root=bad)


def test_the_stream_and_the_inspector_read_the_same_event_time_bounds(monkeypatch):
    """contract.* reaches the Bronze stream, the DLQ inspector's replay and the orchestrator's
    freshness check (which passes over partitions later than the bound ahead) as CONTRACT_*,
    in the form iotpipe.settings.ContractSettings reads ("none": no bound)."""
    from datetime import timedelta

    from iotpipe.contract import EventTimeBounds
    from iotpipe.settings import ContractSettings

    for values, want in (
        ({}, EventTimeBounds(timedelta(hours=1), None)),
        (
            {"contract__maxEventAheadSeconds": 60, "contract__maxEventBehindSeconds": 86400},
            EventTimeBounds(timedelta(minutes=1), timedelta(days=1)),
        ),
    ):
        docs = render(**values)
        stream = next(spec for name, spec in spark_specs(docs) if "bronze" in name)
        freshness = one(docs, "CronJob", "iotpipe-orchestrator-freshness")["spec"]["jobTemplate"]
        [check] = freshness["spec"]["template"]["spec"]["containers"]
        for found in (
            env(docs, "dlq-inspector"),
            {v["name"]: v for v in stream["driver"]["env"]},
            {v["name"]: v for v in check["env"]},
        ):
            for name in ("CONTRACT_MAX_AHEAD_SECONDS", "CONTRACT_MAX_BEHIND_SECONDS"):
                monkeypatch.setenv(name, found[name]["value"])
            assert ContractSettings().time_bounds == want
