"""Process plumbing for the `make run` launcher: port probes and a signal-forwarding supervisor."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts connections on host:port (a connect probe, so TIME_WAIT sockets don't count)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run_forwarding_signals(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
    """Run `command` in its own process group until it exits, passing SIGINT/SIGTERM on; return its exit code.

    Why its own group: a Ctrl-C in the terminal reaches every process in the
    foreground group. Keeping the child out of it means it hears each signal
    exactly once, from here, whether the signal came from the terminal, from
    `kill <launcher pid>`, or from a supervisor signalling the launcher's group.
    """
    child: subprocess.Popen[bytes] | None = None
    early: list[int] = []  # signals that arrive while the child is being spawned

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child is None:
            early.append(signum)
        else:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        child = subprocess.Popen(list(command), env=dict(env), cwd=cwd, process_group=0)
        for signum in early:
            child.send_signal(signum)
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child is not None and child.poll() is None:
            # Only reached when this process fails while the child runs: never leave it orphaned.
            child.terminate()
            child.wait()
