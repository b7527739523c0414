"""A real Kubernetes control plane for tests: etcd + kube-apiserver on loopback.

Both binaries are built by ``scripts/kube-apiserver.sh`` into ``~/.cache/iotpipe/bin``.
:class:`KubeAPIServer` generates a CA, a serving certificate for 127.0.0.1, an admin client
certificate (group ``system:masters``) and the service-account signing keys with
``cryptography``, starts etcd and the API server (``--authorization-mode=RBAC``) on free
ports and writes a kubeconfig. There are no nodes, kubelet or controller manager: objects
are stored and validated, and nothing runs — the tests play the operators' part.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from iotpipe.jars import cache_root
from iotpipe.local.process import free_port, spawn, stop, tail, wait_until

BUILD_HINT = "build it with `scripts/kube-apiserver.sh` (a long Go build, cached by version)"


def binary(name: str) -> Path:
    found = shutil.which(name) or shutil.which(name, path=str(cache_root() / "bin"))
    if found is None:
        raise RuntimeError(f"{name} is not installed: {BUILD_HINT}")
    return Path(found)


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class _CA:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name("iotpipe-test-ca"))
            .issuer_name(_name("iotpipe-test-ca"))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, subject: x509.Name, *, server: bool) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM) for a server (SANs of loopback) or a client."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = x509.oid.ExtendedKeyUsageOID
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.ExtendedKeyUsage([usage.SERVER_AUTH if server else usage.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            names: list[x509.GeneralName] = [
                x509.DNSName(n)
                for n in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
            ]
            names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


class KubeAPIServer:
    """etcd + kube-apiserver in ``workdir``; :meth:`start`, then :attr:`kubeconfig`."""

    def __init__(self, workdir: Path, *, start_timeout: float = 300) -> None:
        self.dir = workdir
        self.start_timeout = start_timeout
        self.etcd_pid: int | None = None
        self.apiserver_pid: int | None = None
        self.port = 0
        self.kubeconfig = workdir / "kubeconfig"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / "pki" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def _pki(self) -> None:
        ca = _CA()
        self.ca = self._write("ca.crt", ca.cert.public_bytes(serialization.Encoding.PEM))
        cert, key = ca.issue(_name("kube-apiserver"), server=True)
        self.server_cert, self.server_key = (
            self._write("apiserver.crt", cert),
            self._write("apiserver.key", key),
        )
        cert, key = ca.issue(_name("iotpipe-test-admin", "system:masters"), server=False)
        self.admin_cert, self.admin_key = (
            self._write("admin.crt", cert),
            self._write("admin.key", key),
        )
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sa_key = self._write("sa.key", _pem_key(sa))
        self.sa_pub = self._write(
            "sa.pub",
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    def start(self) -> None:
        etcd, apiserver = binary("etcd"), binary("kube-apiserver")
        self._pki()
        client_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        etcd_log = self.dir / "etcd.log"
        self.etcd_pid = spawn(
            [
                str(etcd),
                "--name",
                "test",
                "--data-dir",
                str(self.dir / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"test={peer}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            etcd_log,
        )
        wait_until(
            lambda: _http_ok(f"{etcd_url}/health"),
            pid=self.etcd_pid,
            timeout=60,
            what="etcd",
            log=etcd_log,
        )
        self.port = free_port()
        log = self.dir / "kube-apiserver.log"
        self.apiserver_pid = spawn(
            [
                str(apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.dir / 'certs'}",
                f"--tls-cert-file={self.server_cert}",
                f"--tls-private-key-file={self.server_key}",
                f"--client-ca-file={self.ca}",
                f"--service-account-key-file={self.sa_pub}",
                f"--service-account-signing-key-file={self.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
            log,
        )
        wait_until(
            self._ready,
            pid=self.apiserver_pid,
            timeout=self.start_timeout,
            what="kube-apiserver",
            log=log,
        )
        self._write_kubeconfig()

    def _ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.admin_cert), str(self.admin_key))
        return _http_ok(f"{self.url}/readyz", context)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.admin_cert),
                        "client-key": str(self.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
            "current-context": "test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def logs(self) -> str:
        return tail(self.dir / "kube-apiserver.log", 40)

    def stop(self) -> None:
        stop(self.apiserver_pid)
        stop(self.etcd_pid)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return int(response.status) == 200
    except OSError:
        time.sleep(0.25)
        return False
