"""``python -m kimi.emulator --port 8001 [--host 127.0.0.1]``"""

from __future__ import annotations

import argparse

from aiohttp import web

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kimi.emulator",
                                     description="Offline emulator of Kimi's Gen B upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    url = f"http://{args.host}:{args.port}"
    # run_app calls ``print`` once the socket is bound; print our single line instead.
    web.run_app(create_app(), host=args.host, port=args.port,
                print=lambda _banner: print(f"kimi emulator listening on {url}", flush=True))


if __name__ == "__main__":
    main()
