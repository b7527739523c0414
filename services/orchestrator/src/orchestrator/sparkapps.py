"""SparkApplications through the Kubernetes API: read, create, delete, wait for a state.

The Spark operator (sparkoperator.k8s.io/v1beta2) writes each application's progress
to ``.status.applicationState.state``; this module follows that field with a watch
(re-listing when the watch expires) until the application reaches a state wanted or a
terminal one.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
PLURAL = "sparkapplications"
SCHEDULED_PLURAL = "scheduledsparkapplications"

COMPLETED = "COMPLETED"
RUNNING = "RUNNING"
FAILED_STATES = frozenset({"FAILED", "SUBMISSION_FAILED"})
"""States the operator leaves an application in for good after it failed."""

Obj = dict[str, Any]


class SparkAppError(RuntimeError):
    """An application failed, is missing, or did not reach the state wanted in time."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An API client from ``kubeconfig``, else the pod's service account, else ~/.kube/config."""
    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def state_of(app: Obj) -> str:
    """The operator's state of an application ('' until the operator has seen it)."""
    return str(((app.get("status") or {}).get("applicationState") or {}).get("state") or "")


def error_of(app: Obj) -> str:
    state = (app.get("status") or {}).get("applicationState") or {}
    return str(state.get("errorMessage") or "no error message")


class SparkApps:
    """The SparkApplications of one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace

    def get(self, name: str) -> Obj | None:
        try:
            return self._call(self.custom.get_namespaced_custom_object, name=name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def scheduled(self, name: str) -> Obj:
        """A ScheduledSparkApplication (its ``.spec.template`` is a job's spec, as the chart
        renders it)."""
        try:
            return self._call(
                self.custom.get_namespaced_custom_object, name=name, plural=SCHEDULED_PLURAL
            )
        except ApiException as exc:
            if exc.status == 404:
                raise SparkAppError(
                    f"ScheduledSparkApplication {self.namespace}/{name} not found: "
                    "is the chart installed with this job enabled?"
                ) from None
            raise

    def create(
        self,
        name: str,
        spec: Obj,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Obj:
        metadata = {"name": name, "namespace": self.namespace, "labels": labels or {}}
        if annotations:
            metadata["annotations"] = annotations
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SparkApplication",
            "metadata": metadata,
            "spec": spec,
        }
        log.info("creating SparkApplication %s/%s", self.namespace, name)
        return self._call(self.custom.create_namespaced_custom_object, body=body)

    def delete(self, name: str, timeout_s: float = 120) -> None:
        """Delete and wait until it is gone (so a new one of that name can be created)."""
        log.info("deleting SparkApplication %s/%s", self.namespace, name)
        try:
            self._call(
                self.custom.delete_namespaced_custom_object,
                name=name,
                body=client.V1DeleteOptions(propagation_policy="Background"),
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        deadline = time.monotonic() + timeout_s
        while self.get(name) is not None:
            if time.monotonic() > deadline:
                raise SparkAppError(
                    f"SparkApplication {name} still exists {timeout_s:.0f}s after delete"
                )
            time.sleep(0.2)

    def wait_for(
        self,
        name: str,
        wanted: Collection[str],
        timeout_s: float,
        *,
        on_state: Callable[[str], None] | None = None,
    ) -> Obj:
        """Follow ``name`` until its state is one of ``wanted`` and return it. A failed
        state (FAILED, SUBMISSION_FAILED) not wanted, a deletion or the timeout raise."""
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            app = self.get(name)
            if app is None:
                raise SparkAppError(f"SparkApplication {self.namespace}/{name} was deleted")
            state = state_of(app)
            if state != last and on_state:
                on_state(state)
            last = state
            if state in wanted:
                return app
            if state in FAILED_STATES:
                raise SparkAppError(f"SparkApplication {name} {state}: {error_of(app)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SparkAppError(
                    f"SparkApplication {name} is {state or 'not yet seen by the operator'} "
                    f"after {timeout_s:.0f}s (waiting for {', '.join(sorted(wanted))})"
                )
            self._watch_change(name, app["metadata"]["resourceVersion"], min(remaining, 60))

    def _watch_change(self, name: str, resource_version: str, timeout_s: float) -> None:
        """Return at the first change to ``name`` after ``resource_version`` (or on timeout)."""
        w = watch.Watch()
        try:
            for _event in w.stream(
                self.custom.list_namespaced_custom_object,
                group=GROUP,
                version=VERSION,
                namespace=self.namespace,
                plural=PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=max(1, int(timeout_s)),
            ):
                return
        except ApiException as exc:
            if exc.status != 410:  # 410 Gone: the version expired; the caller re-reads
                raise
        finally:
            w.stop()

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        kwargs.setdefault("plural", PLURAL)
        return method(group=GROUP, version=VERSION, namespace=self.namespace, **kwargs)


def respec(app: Obj) -> Obj:
    """A copy of an application's spec, to create it again."""
    return copy.deepcopy(app["spec"])
