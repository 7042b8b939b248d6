"""Run one stand-in as its own process: python -m tests.standins PLATFORM [options].

Prints the base URL as the first line of stdout and a JSON description (credentials,
webhook URL) as the second, then serves until SIGTERM or SIGINT. With --state FILE, a
JSON snapshot of everything received and created is rewritten after every request.
Faults and other knobs: POST /__standin__/knob {"name": ..., "args": {...}}.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from tests.standins import PLATFORMS


def parser() -> argparse.ArgumentParser:
    """Return the command line's parser, one subcommand per platform."""
    main = argparse.ArgumentParser(
        prog="python -m tests.standins", description=__doc__.split("\n")[0]
    )
    platforms = main.add_subparsers(dest="platform", required=True, metavar="PLATFORM")
    for name, cls in PLATFORMS.items():
        sub = platforms.add_parser(name, help=(cls.__doc__ or name).split("\n")[0])
        sub.add_argument(
            "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)"
        )
        sub.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
        sub.add_argument("--state", type=Path, help="JSON file rewritten after every request")
        sub.add_argument(
            "--latency",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="answer every request this long after receiving it (default 0)",
        )
        cls.add_arguments(sub)
    return main


def main(argv: list[str] | None = None) -> int:
    """Serve one stand-in until SIGTERM or SIGINT."""
    ns = parser().parse_args(argv)
    standin = PLATFORMS[ns.platform].from_arguments(
        ns, host=ns.host, port=ns.port, state_file=ns.state, latency=ns.latency
    )
    done = threading.Event()

    def stop(*_: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with standin:
        print(standin.url, flush=True)
        print(json.dumps(standin.describe()), flush=True)
        while not done.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
