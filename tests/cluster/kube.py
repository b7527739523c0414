"""The cluster tier's view of the single-node cluster (scripts/cluster.sh): kubectl, Secrets,
Service addresses, and cluster DNS names for clients that run on the host.

Clients on the host reach Services and pods directly (kube-proxy's rules cover the host's own
traffic, and the host routes every pod address). What the host lacks is the cluster's DNS: a
Kafka client is told the brokers' pod names, and TLS checks the name it dialled. ``cluster_names``
answers ``*.svc`` and ``*.svc.cluster.local`` names from the API server (a Service's ClusterIP, a
StatefulSet pod's address through its headless Service) for the duration of a ``with`` block.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Kube:
    kubeconfig: Path
    kubectl_path: Path
    namespace: str = "iotpipe"

    def run(
        self,
        *args: str,
        namespace: str | None = None,
        input: str | None = None,
        timeout: float = 120,
    ) -> str:
        ns = namespace or self.namespace
        cmd = [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), "-n", ns, *args]
        done = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def get(self, *args: str, namespace: str | None = None) -> Any:
        return json.loads(self.run("get", *args, "-o", "json", namespace=namespace))

    def secret(self, name: str, key: str) -> str:
        data = self.get("secret", name)["data"]
        return base64.b64decode(data[key]).decode()

    def service_url(self, name: str, port: int = 8000, namespace: str | None = None) -> str:
        """A Service's address: its cluster IP, or for a headless one (clusterIP None, e.g.
        the operator's prometheus-operated) the first ready address behind it."""
        ip = self.get("service", name, namespace=namespace)["spec"].get("clusterIP")
        if not ip or ip == "None":
            slices = self.get(
                "endpointslices", "-l", f"kubernetes.io/service-name={name}", namespace=namespace
            )["items"]
            ready = [
                address
                for piece in slices
                for endpoint in piece.get("endpoints") or []
                if endpoint.get("conditions", {}).get("ready", True)
                for address in endpoint.get("addresses", [])
            ]
            assert ready, f"the headless service {name} has no ready endpoint"
            ip = ready[0]
        return f"http://{ip}:{port}"

    def pods(self, *selector: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("pods", *selector, namespace=namespace)["items"]
        return items

    def resolve(self, name: str) -> str | None:
        """The address of a cluster DNS name, or None when ``name`` is not one."""
        parts = name.rstrip(".").split(".")
        if parts[-2:] == ["cluster", "local"]:
            parts = parts[:-2]
        if len(parts) < 3 or parts[-1] != "svc":
            return None
        if len(parts) == 3:  # <service>.<namespace>.svc
            service, namespace = parts[0], parts[1]
            ip: str = self.get("service", service, namespace=namespace)["spec"]["clusterIP"]
            return ip
        if len(parts) == 4:  # <pod hostname>.<headless service>.<namespace>.svc
            hostname, service, namespace = parts[0], parts[1], parts[2]
            for pod in self.pods(namespace=namespace):
                spec = pod["spec"]
                if spec.get("hostname") == hostname and spec.get("subdomain") == service:
                    ip = pod["status"].get("podIP")
                    return ip or None
        return None


def wait_until(what: str, check: Callable[[], bool], timeout: float, every: float = 2.0) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


@contextmanager
def cluster_names(kube: Kube) -> Iterator[None]:
    """Resolve cluster DNS names on the host (module docstring) inside the block."""
    original = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # Asked each time, not cached: a restarted pod has a new address.
        address = kube.resolve(host) if isinstance(host, str) and ".svc" in host else None
        return original(address or host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original
