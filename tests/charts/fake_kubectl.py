"""A stand-in for kubectl that keeps Secrets as folders under $FAKE_KUBE, one file per key.

Just what k8s/kafka-secrets.sh calls: apply (ignored), get/create/delete secret, and
``get secret NAME -o jsonpath={.data.KEY}``. Every call is appended to $FAKE_KUBE/calls.log.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    store = Path(os.environ["FAKE_KUBE"])
    with (store / "calls.log").open("a") as log:
        log.write(" ".join(argv) + "\n")
    args = argv
    while args and args[0] in ("--context", "-n"):
        args = args[2:]
    if args[:1] == ["apply"]:
        return 0
    if args[:2] == ["get", "secret"]:
        folder = store / args[2]
        if not folder.is_dir():
            print(f'Error from server (NotFound): secrets "{args[2]}" not found', file=sys.stderr)
            return 1
        if "-o" in args:
            found = re.fullmatch(r"jsonpath=\{\.data\.(.+)\}", args[args.index("-o") + 1])
            assert found, args
            data = (folder / found.group(1).replace("\\.", ".")).read_bytes()
            sys.stdout.write(base64.b64encode(data).decode())
        return 0
    if args[:2] == ["delete", "secret"]:
        folder = store / args[2]
        if folder.is_dir():
            for item in folder.iterdir():
                item.unlink()
            folder.rmdir()
        return 0
    if args[:3] == ["create", "secret", "generic"]:
        folder = store / args[3]
        folder.mkdir()
        for arg in args[4:]:
            kind, _, spec = arg.partition("=")
            key, _, value = spec.partition("=")
            data = Path(value).read_bytes() if kind == "--from-file" else value.encode()
            (folder / key).write_bytes(data)
        print(f"secret/{args[3]} created")
        return 0
    print(f"fake kubectl: unsupported {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
