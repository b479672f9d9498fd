#!/usr/bin/env python3
"""Serve the lab's mirror tree ($KUBEADM_AWS_CACHE/mirror) over HTTP to the node containers.

The tree is laid out like the production sources (pkgs.k8s.io/..., github.com/<org>/<repo>/releases/
download/..., get.helm.sh/...), so roles only swap a base URL. Standard library only; one thread
per request; one access-log line per request on stderr.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".deb": "application/vnd.debian.binary-package",
        ".gpg": "application/pgp-keys",
        ".key": "application/pgp-keys",
        ".sha256sum": "text/plain",
        ".sha256": "text/plain",
        "": "application/octet-stream",
    }

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--directory", required=True)
    args = parser.parse_args()
    handler = functools.partial(Handler, directory=args.directory)
    http.server.ThreadingHTTPServer.daemon_threads = True
    with http.server.ThreadingHTTPServer((args.bind, args.port), handler) as server:
        sys.stderr.write(f"serving {args.directory} on http://{args.bind}:{args.port}/\n")
        sys.stderr.flush()
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
