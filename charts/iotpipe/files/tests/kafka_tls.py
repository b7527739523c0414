"""helm test: the Kafka bootstrap listener completes a TLS handshake with a certificate that the
cluster CA signed for the bootstrap Service's name.

Runs in a service image (templates/tests/kafka-tls.yaml passes this file to ``python -c``);
standard library only. SASL comes after TLS on the listener, so no Kafka credentials are
needed. Retries until ``--wait`` seconds have passed; exits 1 with the last error otherwise.
"""

import argparse
import socket
import ssl
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "host", help="the bootstrap Service, e.g. iotpipe-kafka-bootstrap.iotpipe.svc"
    )
    parser.add_argument("port", type=int)
    parser.add_argument("--cafile", required=True, help="the cluster CA (ca.crt)")
    parser.add_argument(
        "--address", help="where to connect (default: host); the name checked stays host"
    )
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to keep retrying")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.cafile)  # verifies the chain and the name
    deadline = time.monotonic() + args.wait
    while True:
        try:
            address = (args.address or args.host, args.port)
            with (
                socket.create_connection(address, timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=args.host) as tls,
            ):
                print(f"{args.host}:{args.port}: {tls.version()} handshake, certificate verified")
                return 0
        except OSError as exc:  # ssl.SSLError is one: a bad certificate fails like a refusal
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            print(
                f"{args.host}:{args.port}: no TLS handshake after {args.wait:g} s: {last}",
                file=sys.stderr,
            )
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
