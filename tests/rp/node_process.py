"""A Node.js relying party run as a child process: it prints one JSON line (the authorization
URL and what it sent), reads the callback URL on stdin, and prints one JSON line (the result)."""

from __future__ import annotations

import json
import subprocess
from typing import Any


class NodeProcess:
    def __init__(self, args: list[str], *, timeout: float = 60) -> None:
        self.timeout = timeout
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the Node RP exited without an answer"
        answer = json.loads(line)
        assert isinstance(answer, dict)
        return answer

    def callback(self, url: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(url + "\n")
        self.process.stdin.flush()
        answer = self.read()
        self.process.wait(timeout=self.timeout)
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
