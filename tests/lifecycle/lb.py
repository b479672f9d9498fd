#!/usr/bin/env python3
"""A TCP load balancer for the lab's control planes: what an AWS Network Load Balancer in front of the
API servers is in production (kubeadm_aws_control_plane_endpoint), played on the lab network's gateway.

Connections go to the backends in turn; a backend that does not accept within 1 s is skipped for the next
one, so a control plane that is stopped or removed is left out the way a load balancer's health check
leaves it out.
Lab only: the molecule scenario `lifecycle` starts it before the cluster exists and stops it at the end.

    python3 tests/lifecycle/lb.py --listen 10.213.0.1:6443 --backend 10.213.0.11:6443 --backend 10.213.0.12:6443
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys

CONNECT_TIMEOUT = 1.0


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - already closed
            pass


class Balancer:
    def __init__(self, backends: list[tuple[str, int]]):
        self.backends = backends
        self.start = itertools.cycle(range(len(backends)))

    async def connect(self):
        first = next(self.start)
        for i in range(len(self.backends)):
            host, port = self.backends[(first + i) % len(self.backends)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                continue
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self.connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, type=address)
    p.add_argument("--backend", action="append", required=True, type=address)
    args = p.parse_args(argv)
    server = await asyncio.start_server(Balancer(args.backend).handle, *args.listen, reuse_address=True)
    print("listening on %s:%d, backends %s" % (*args.listen, args.backend), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
