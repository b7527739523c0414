"""helm lint, and every rendered document valid against Kubernetes' and the CRDs' schemas."""

from __future__ import annotations

import pytest

from .manifests import (
    CHART,
    KUBERNETES_VERSION,
    PROFILES,
    STATEFULSET_PROFILES,
    Doc,
    find,
    helm,
    one,
    render,
    render_on,
    validate,
)

STRIMZI_KINDS = {"Kafka", "KafkaNodePool", "KafkaUser", "KafkaTopic"}


@pytest.mark.parametrize("profile", PROFILES)
def test_helm_lint_is_clean(profile):
    args = ["lint", "--strict", str(CHART), "--namespace", "iotpipe"]
    args += ["--kube-version", f"{KUBERNETES_VERSION}.0"]
    for name in PROFILES[profile]:
        args += ["-f", str(CHART / name)]
    out = helm(*args)
    assert "0 chart(s) failed" in out, out


@pytest.mark.parametrize("profile", PROFILES)
def test_every_document_validates_strictly(profile):
    docs = render(profile)
    problems = []
    for doc in docs:
        try:
            validate(doc)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("profile", PROFILES)
def test_renders_the_whole_pipeline(profile):
    docs = render(profile)
    kinds = {d["kind"] for d in docs}
    for kind in (
        "Deployment",
        "Service",
        "ServiceAccount",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "SparkApplication",
        "ScheduledSparkApplication",
    ):
        assert kind in kinds, f"{profile}: no {kind}"
    assert len(find(docs, "Deployment")) == 4
    # Kafka: Strimzi's resources, or the chart's own StatefulSet and its setup Job; never both.
    if profile in STATEFULSET_PROFILES:
        assert not STRIMZI_KINDS & kinds, profile
        assert [s["metadata"]["name"] for s in find(docs, "StatefulSet")] == ["iotpipe-kafka"]
        assert [j["metadata"]["name"] for j in find(docs, "Job")] == ["iotpipe-kafka-setup"]
    else:
        assert kinds >= STRIMZI_KINDS, profile
        assert not find(docs, "StatefulSet")
        assert not find(docs, "Job")
    monitors = {"ServiceMonitor", "PodMonitor"} & kinds
    assert monitors == (set() if profile in ("dev",) else {"ServiceMonitor", "PodMonitor"})
    # Every object lands in the release namespace (nothing in `default` by accident).
    assert {d["metadata"]["namespace"] for d in docs} == {"iotpipe"}


def test_the_validation_catches_what_the_api_server_rejects():
    """The validators are strict: a removed Strimzi field and a misspelt Pod field fail."""
    docs = render()
    kafka = find(docs, "Kafka")[0]
    broken = {
        **kafka,
        "spec": {**kafka["spec"], "kafka": {**kafka["spec"]["kafka"], "replicas": 3}},
    }
    with pytest.raises(AssertionError, match="replicas"):
        validate(broken)
    deployment = find(docs, "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    typo = {**pod, "serviceAcountName": "x"}
    broken = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {**deployment["spec"]["template"], "spec": typo},
        },
    }
    with pytest.raises(AssertionError, match="serviceAcountName"):
        validate(broken)
    with pytest.raises(AssertionError, match="neither"):
        validate({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}})


def test_values_schema_rejects_bad_values():
    from .manifests import HelmError

    bad_values: list[tuple[str, object, str]] = [
        ("dlqInspector__replicas", 0, "replicas"),
        ("serviceAccounts__spark__roleArn", "not-an-arn", "roleArn"),
        ("warehouse__dialect", "mysql", "dialect"),
        ("kafka__topics__events__partitions", 0, "partitions"),
        ("sensorSimulator__replica", 2, "replica"),
        ("qualityGate__resources__limits", None, "limits"),  # null deletes the key
        # per-process state: one replica, never a rolling update (values.yaml says why)
        ("dlqInspector__replicas", 2, "dlqInspector/replicas"),
        ("qualityGate__replicas", 2, "qualityGate/replicas"),
        ("warehouseLoader__replicas", 3, "warehouseLoader/replicas"),
        ("qualityGate__strategy", "RollingUpdate", "qualityGate/strategy"),
        # a budget that could block a drain of a single replica forever
        ("serviceDefaults__maxUnavailable", 0, "maxUnavailable"),
        ("dlqInspector__maxUnavailable", "0%", "maxUnavailable"),
    ]
    for key, value, hint in bad_values:
        with pytest.raises(HelmError, match=hint):
            render(**{key: value})


def test_the_schema_says_why_the_stateful_services_run_one_replica():
    import json

    from .manifests import CHART

    schema = json.loads((CHART / "values.schema.json").read_text())
    for key, doc in (
        ("dlqInspector", "dlq-inspector.md"),
        ("qualityGate", "quality-gate.md"),
        ("warehouseLoader", "warehouse-loader.md"),
    ):
        replicas = schema["properties"][key]["properties"]["replicas"]
        assert replicas["maximum"] == 1, key
        assert "one replica" in replicas["description"], key
        assert doc in replicas["description"], key


def test_batch_jobs_and_orchestrator_push_to_the_one_pushgateway_url() -> None:
    url = "http://pushgateway.monitoring:9091"
    docs = render(monitoring__pushgatewayUrl=url)

    def env(container: Doc) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in container.get("env", [])}

    batch = find(docs, "ScheduledSparkApplication")
    assert batch
    for app in batch:
        assert env(app["spec"]["template"]["driver"])["MEDALLION_PUSHGATEWAY_URL"] == url
        assert "MEDALLION_PUSHGATEWAY_URL" not in env(app["spec"]["template"]["executor"])
    stream = one(docs, "SparkApplication", "iotpipe-bronze-stream")
    assert "MEDALLION_PUSHGATEWAY_URL" not in env(stream["spec"]["driver"])
    cronjobs = find(docs, "CronJob")
    assert cronjobs
    for cronjob in cronjobs:
        (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert env(container)["ORCHESTRATOR_PUSHGATEWAY_URL"] == url
    # Unset by default: nothing pushes.
    for app in find(render(), "ScheduledSparkApplication"):
        assert "MEDALLION_PUSHGATEWAY_URL" not in env(app["spec"]["template"]["driver"])


MONITOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.mark.parametrize("profile", ["default", "statefulset", "eks"])
def test_monitors_render_only_where_prometheus_operator_is(profile):
    """The monitors need prometheus-operator's CRDs: with monitoring.enabled they render on a
    cluster that serves monitoring.coreos.com/v1 and are left out where it does not, so the
    chart installs there too. The values switch still turns them off on such a cluster."""
    served = render(profile)
    kinds = {d["kind"] for d in served if d["apiVersion"] == "monitoring.coreos.com/v1"}
    assert kinds == MONITOR_KINDS, profile
    # one ServiceMonitor per service
    assert len(find(served, "ServiceMonitor")) == len(find(served, "Deployment")) == 4
    absent = render_on((), profile)
    assert not [d for d in absent if d["apiVersion"].startswith("monitoring.coreos.com/")]
    # the rest of the release is the same without them
    rest = [d for d in served if d["kind"] not in MONITOR_KINDS]
    assert rest == absent
    switched_off = render(profile, monitoring__enabled=False)
    assert not {d["kind"] for d in switched_off} & MONITOR_KINDS
    # another version of the group does not count
    assert (
        not {d["kind"] for d in render_on(("monitoring.coreos.com/v1alpha1",), profile)}
        & MONITOR_KINDS
    )


def test_daily_run_step_deadlines_reach_the_orchestrators_settings() -> None:
    from orchestrator.settings import OrchestratorSettings

    docs = render(orchestrator__stepDeadlineMinutes__silverToGold=100)
    daily = one(docs, "CronJob", "iotpipe-orchestrator-daily")
    (container,) = daily["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    deadlines = {
        e["name"]: e["value"] for e in container["env"] if e["name"].startswith("ORCHESTRATOR_DEAD")
    }
    tokens = {"quality_gate_token": "x" * 16, "loader_token": "x" * 16}
    fields = {k.removeprefix("ORCHESTRATOR_").lower(): v for k, v in deadlines.items()}
    settings = OrchestratorSettings.model_validate(tokens | fields)
    assert settings.step_deadlines == {
        "bronze-to-silver": 90 * 60,
        "silver-to-gold": 100 * 60,
        "quality-gate": 180 * 60,
        "warehouse-load": 210 * 60,
    }


def test_the_reconcile_cronjob_runs_the_reconcile_without_the_kubernetes_api() -> None:
    from orchestrator.settings import OrchestratorSettings

    docs = render(orchestrator__reconcile__lookbackDays=3)
    job = one(docs, "CronJob", "iotpipe-orchestrator-reconcile")
    assert job["spec"]["schedule"] == "55 * * * *"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["args"] == ["reconcile"]
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["ORCHESTRATOR_LOADER_TOKEN"]["valueFrom"]
    assert "secretKeyRef" in env["ORCHESTRATOR_QUALITY_GATE_TOKEN"]["valueFrom"]
    tokens = {"quality_gate_token": "x" * 16, "loader_token": "x" * 16}
    lookback = env["ORCHESTRATOR_RECONCILE_LOOKBACK_DAYS"]["value"]
    settings = OrchestratorSettings.model_validate(tokens | {"reconcile_lookback_days": lookback})
    assert settings.reconcile_lookback_days == 3
    off = render(orchestrator__reconcile__enabled=False)
    assert not [d for d in off if d["metadata"]["name"] == "iotpipe-orchestrator-reconcile"]
