#!/usr/bin/env python3
"""The kantoku images' HEALTHCHECK and Kubernetes probe (deploy/docker/): exit 0 when every
target named answers 200.

    kantoku-healthcheck ray    the Ray node's dashboard agent: raylet (and GCS on the head) alive
    kantoku-healthcheck web    the studio or the avatar: GET /healthz on KANTOKU_PORT
    kantoku-healthcheck URL    any URL

Standard library only: the images carry no curl or wget.
"""

import os
import sys
import urllib.request

RAY_AGENT_HEALTH = "http://127.0.0.1:52365/api/healthz"


def url_for(target: str) -> str:
    if target == "ray":
        return RAY_AGENT_HEALTH
    if target == "web":
        return f"http://127.0.0.1:{os.environ.get('KANTOKU_PORT', '8000')}/healthz"
    return target


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    targets = argv[1:] or ["ray"]
    return 0 if all(answers(url_for(target)) for target in targets) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
