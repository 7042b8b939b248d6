"""Run a stand-in in its own process, which outlives the client a test kills and restarts."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

REPO = Path(__file__).resolve().parents[2]


class StandInProcess:
    """A stand-in started with ``python -m tests.standins``: its URL, state and knobs."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        url: str,
        info: dict[str, Any],
        state_file: Path | None,
    ) -> None:
        self.process, self.url, self.info, self.state_file = process, url, info, state_file
        self._http = httpx.Client(base_url=url, timeout=5)

    def state(self) -> dict[str, Any]:
        """Return the last snapshot written to --state (or ask the process when there is none)."""
        if self.state_file is None:
            return dict(self._http.get("/__standin__/state").json())
        return dict(json.loads(self.state_file.read_text(encoding="utf-8")))

    def knob(self, name: str, **args: Any) -> Any:
        """Call a knob (rate_limit_next, delay_next, ...) in the process; return its result."""
        reply = self._http.post("/__standin__/knob", json={"name": name, "args": args})
        if reply.status_code != 200:
            raise ValueError(reply.json().get("error", reply.text))
        return reply.json()["result"]

    def stop(self, timeout: float = 5) -> int:
        """Stop the process (SIGTERM, then SIGKILL); return its exit status."""
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Hand the process's stdout to the queue line by line, so its pipe never fills."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def spawn(
    platform: str,
    *options: str,
    state_file: Path | None = None,
    port: int = 0,
    timeout: float = 10,
) -> StandInProcess:
    """Start ``python -m tests.standins platform`` and wait (at most timeout s) for its URL."""
    command = [sys.executable, "-m", "tests.standins", platform, "--port", str(port), *options]
    if state_file is not None:
        command += ["--state", str(state_file)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        url, info = lines.get(timeout=timeout), lines.get(timeout=timeout)
    except queue.Empty:
        url = info = None
    if url is None or info is None:
        process.kill()
        process.wait()
        raise RuntimeError(
            f"the {platform} stand-in did not start (exit status {process.returncode})"
        )
    return StandInProcess(process, url.strip(), json.loads(info), state_file)
