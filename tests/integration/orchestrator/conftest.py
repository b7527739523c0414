"""Fixtures of the orchestrator's integration tests: a real Kubernetes API server with the
CRDs and the chart installed, a stand-in Spark operator, and one local HTTP receiver that
plays the quality gate, the warehouse loader, the Slack webhook and the Pushgateway.

The gate and loader are a small real HTTP server here (not the real apps): the real quality
gate needs Great Expectations on Spark and the loader a warehouse, minutes of start-up for
what these tests check, which is the orchestrator's calls, their order and their payloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from orchestrator.sparkapps import GROUP, PLURAL, VERSION, api_client, state_of

from iotpipe.local.process import free_port
from iotpipe.windows import Window

from .kubeapi import BUILD_HINT, KubeAPIServer, binary

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "iotpipe"
SHARED = Path(os.environ.get("IOTPIPE_SHARED", REPO.parent / "shared"))
CRDS = Path(os.environ.get("IOTPIPE_CRDS", SHARED / "crds"))
RELEASE = "iotpipe"
NAMESPACE = "iotpipe"
"""The default-values release the orchestrator tests drive."""
PROFILES = {"default": (NAMESPACE, ()), "dev": ("iotpipe-dev", ("values-dev.yaml",))}
GATE_TOKEN = "gate-token-0123456789"
LOADER_TOKEN = "loader-token-0123456789"


@pytest.fixture(scope="session")
def kube_api() -> Iterator[KubeAPIServer]:
    """etcd + kube-apiserver on loopback (RBAC, TLS, an admin client certificate)."""
    workdir = Path(tempfile.mkdtemp(prefix="iotpipe-kube-"))
    server = KubeAPIServer(workdir)
    try:
        server.start()
    except Exception as exc:
        server.stop()
        pytest.fail(
            f"the Kubernetes API server could not start, so this test cannot run: {exc}\n"
            f"({BUILD_HINT})",
            pytrace=False,
        )
    yield server
    server.stop()
    subprocess.run(["rm", "-rf", str(workdir)], check=False)


@pytest.fixture(scope="session")
def kube(kube_api: KubeAPIServer) -> Iterator[client.ApiClient]:
    with api_client(str(kube_api.kubeconfig)) as api:
        yield api


@pytest.fixture(scope="session")
def crds(kube: client.ApiClient) -> list[str]:
    """The operators' CRDs from the shared folder, created and Established."""
    ext = client.ApiextensionsV1Api(kube)
    names = []
    for path in sorted(CRDS.rglob("*.yaml")):
        for doc in yaml.load_all(
            path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        ):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                ext.create_custom_resource_definition(doc)
                names.append(doc["metadata"]["name"])
    if not names:
        pytest.fail(f"no CRDs under {CRDS} (set IOTPIPE_SHARED or IOTPIPE_CRDS)", pytrace=False)
    deadline = time.monotonic() + 60
    for name in names:
        while not any(
            c.type == "Established" and c.status == "True" for c in (_crd_conditions(ext, name))
        ):
            assert time.monotonic() < deadline, f"CRD {name} not Established in 60s"
            time.sleep(0.2)
    return names


def _crd_conditions(ext: client.ApiextensionsV1Api, name: str) -> list[Any]:
    status = ext.read_custom_resource_definition(name).status
    return list(status.conditions or []) if status else []


def helm(kube_api: KubeAPIServer, *args: str) -> str:
    result = subprocess.run(
        [str(binary("helm")), "--kubeconfig", str(kube_api.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}"
    return result.stdout


@pytest.fixture(scope="session")
def releases(kube_api: KubeAPIServer, crds: list[str]) -> dict[str, list[dict[str, Any]]]:
    """`helm install` with the default and the dev values (one namespace each); the
    manifests each release applied."""
    manifests = {}
    for profile, (namespace, values) in PROFILES.items():
        value_args = [a for v in values for a in ("-f", str(CHART / v))]
        helm(
            kube_api,
            "install",
            RELEASE,
            str(CHART),
            "-n",
            namespace,
            "--create-namespace",
            *value_args,
        )
        text = helm(kube_api, "get", "manifest", RELEASE, "-n", namespace)
        manifests[profile] = [d for d in yaml.safe_load_all(text) if d]
    return manifests


# -- a stand-in for the Spark operator: it writes the status, as the operator would --------

Policy = Callable[[dict[str, Any]], str | None]
"""Given a SparkApplication without a state, the state the operator gives it (None: none)."""


class FakeOperator:
    """Polls the namespace's SparkApplications and, for each one without a state, patches
    its status subresource (as the Spark operator does) to what ``policy`` says."""

    def __init__(self, kube: client.ApiClient, namespace: str, policy: Policy) -> None:
        self.custom = client.CustomObjectsApi(kube)
        self.namespace = namespace
        self.policy = policy
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def set_state(self, name: str, state: str, message: str = "") -> None:
        body = {
            "status": {
                "applicationState": {"state": state, "errorMessage": message},
                "driverInfo": {"podName": f"{name}-driver"},  # required by the CRD's schema
            }
        }
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, PLURAL, name, body
        )

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            apps: Any = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )
            for app in apps["items"]:
                if state_of(app):
                    continue
                name = app["metadata"]["name"]
                state = self.policy(app)
                if state is None:
                    continue
                try:
                    self.set_state(name, state, f"test operator: {state}")
                    self.seen.append(f"{name}={state}")
                except ApiException as exc:
                    if exc.status != 404:  # deleted meanwhile
                        raise

    def __enter__(self) -> FakeOperator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def operator(kube: client.ApiClient, releases: object) -> Callable[[Policy], FakeOperator]:
    return lambda policy: FakeOperator(kube, NAMESPACE, policy)


@pytest.fixture
def cleanup_apps(kube: client.ApiClient, releases: object) -> Iterator[None]:
    """Delete the SparkApplications a test's runs created (the release's own stay)."""
    yield
    custom = client.CustomObjectsApi(kube)
    apps: Any = custom.list_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        label_selector="app.kubernetes.io/managed-by=iotpipe-orchestrator",
    )
    for app in apps["items"]:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, app["metadata"]["name"]
        )


# -- the receiver: gate, loader, webhook and Pushgateway on one local HTTP server ----------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    failing_gates: set[tuple[str, str]] = field(default_factory=set)
    """(layer, window) pairs the gate answers `fail` for."""
    synchronous: bool = False
    """Answer the gate's and the loader's POSTs at the end (201), as services did before
    jobs, instead of 202 + Location (to a client sending `Prefer: respond-async`)."""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The jobs by URL path, each finished (its GET answers it as it is)."""
    polls: int = 1
    """GETs a job answers `running` before it answers it finished."""
    load_problem: dict[str, Any] | None = None
    """Set: the loads fail with this problem (its `status` and `detail`)."""
    forgotten: set[str] = field(default_factory=set)
    """Job paths answered 404, as by a service that restarted after accepting them."""

    def to(self, prefix: str, method: str = "POST") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix) and r.method == method]

    def texts(self) -> list[str]:
        return [r.json()["text"] for r in self.to("/hook")]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: Any = None, location: str | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(data)

        def _answer(
            self, status: int, result: dict[str, Any], problem: dict[str, Any] | None = None
        ) -> None:
            """The work's ``result`` (or ``problem``): as a job (202 + Location) when asked
            for, else at once."""
            if receiver.synchronous or self.headers.get("Prefer") != "respond-async":
                return (
                    self._reply(problem["status"], problem)
                    if problem
                    else self._reply(status, result)
                )
            number = len(receiver.jobs) + 1
            location = f"{self.path.rsplit('/', 1)[0]}/jobs/job-{number}"
            job = {"id": f"job-{number}", "location": location, "result": None, "problem": None}
            receiver.jobs[location] = {
                **job,
                **({"status": "failed", "problem": problem} if problem else {}),
                **({} if problem else {"status": "succeeded", "result": result}),
            }
            return self._reply(202, {**job, "status": "queued"}, location)

        def _poll(self) -> None:
            job = receiver.jobs.get(self.path)
            if job is None or self.path in receiver.forgotten:
                return self._reply(404, {"detail": f"no job {self.path}"})
            seen = sum(r.path == self.path for r in receiver.requests)
            return self._reply(200, job if seen > receiver.polls else {**job, "status": "running"})

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, self.path, dict(self.headers.items()), body)
            receiver.requests.append(request)
            auth = self.headers.get("Authorization")
            if self.command == "GET" and "/jobs/" in self.path:
                return self._poll()
            if self.path == "/gate/runs":
                if auth != f"Bearer {GATE_TOKEN}":
                    return self._reply(401, {"detail": "bad token"})
                run = request.json()
                if "window" not in run:  # the one window shape; the old text form still taken
                    run["window"] = str(
                        Window(
                            datetime.fromisoformat(run["window_start"]),
                            datetime.fromisoformat(run["window_end"]),
                        )
                    )
                failed = (run["layer"], run["window"]) in receiver.failing_gates
                return self._answer(
                    201,
                    {
                        "run_id": f"run-{len(receiver.requests)}",
                        "layer": run["layer"],
                        "window": run["window"],
                        "verdict": "fail" if failed else "pass",
                        "pass_rate": 0.5 if failed else 1.0,
                        "failed_expectations": ["expect_column_values_to_not_be_null"]
                        if failed
                        else [],
                        "finished_at": "2026-11-26T00:00:00Z",
                    },
                )
            if self.path == "/loader/loads":
                if auth != f"Bearer {LOADER_TOKEN}":
                    return self._reply(401, {"detail": "bad token"})
                load = request.json()
                return self._answer(
                    201,
                    {"id": f"load-{len(receiver.requests)}", "status": "succeeded", **load},
                    receiver.load_problem,
                )
            return self._reply(200)  # webhook (/hook) and Pushgateway (/metrics/job/...)

        do_POST = do_PUT = do_GET = _handle  # noqa: N815 - http.server's method names

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_env(receiver: Receiver, tmp_path: Path) -> dict[str, str]:
    """The orchestrator's environment, as the chart's CronJob sets it, with the receiver as
    gate, loader, webhook and Pushgateway and a lake in ``tmp_path``."""
    return {
        "ORCHESTRATOR_NAMESPACE": NAMESPACE,
        "ORCHESTRATOR_RELEASE": RELEASE,
        "ORCHESTRATOR_QUALITY_GATE_URL": f"{receiver.url}/gate",
        "ORCHESTRATOR_QUALITY_GATE_TOKEN": GATE_TOKEN,
        "ORCHESTRATOR_LOADER_URL": f"{receiver.url}/loader",
        "ORCHESTRATOR_LOADER_TOKEN": LOADER_TOKEN,
        "ORCHESTRATOR_WEBHOOK_URL": f"{receiver.url}/hook",
        "ORCHESTRATOR_PUSHGATEWAY_URL": receiver.url,
        "ORCHESTRATOR_JOB_TIMEOUT_SECONDS": "60",
        "ORCHESTRATOR_STREAM_TIMEOUT_SECONDS": "60",
        "LAKE_ROOT": str(tmp_path / "lake"),
    }


@pytest.fixture
def orchestrator_env(kube_api: KubeAPIServer, local_env: dict[str, str]) -> dict[str, str]:
    """:func:`local_env` pointed at the test API server."""
    return {**local_env, "ORCHESTRATOR_KUBECONFIG": str(kube_api.kubeconfig)}
