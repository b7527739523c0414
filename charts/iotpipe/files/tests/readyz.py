"""helm test: a service answers 2xx on its readiness route through its Service.

Runs in the service's own image (the chart's templates/tests/readyz.yaml passes this file to
``python -c``); standard library only. Retries until ``--wait`` seconds have passed, so a pod
that is still starting gets a moment; exits 1 with the last answer (a 503 names what the
service waits for) if it never becomes ready.
"""

import argparse
import sys
import time
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="e.g. http://iotpipe-dlq-inspector:8000/readyz")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to keep retrying")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        try:
            with urllib.request.urlopen(args.url, timeout=5) as answer:
                print(f"{args.url}: {answer.status} {answer.read(500).decode(errors='replace')}")
                return 0
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read(500).decode(errors='replace')}"
        except OSError as exc:  # refused, unresolvable, timed out
            last = str(exc)
        if time.monotonic() >= deadline:
            print(f"{args.url}: not ready after {args.wait:g} s: {last}", file=sys.stderr)
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
