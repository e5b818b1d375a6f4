"""Fault injection for one emulated cluster: error statuses, dropped connections, slow answers, dropped watches.

Rules are matched in order against each request (method, path, whether it is a watch); a rule
with `times` stops matching after that many hits. Tests change rules while clients run.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass


@dataclass
class Rule:
    """One fault: answer ``status`` (0: close the connection unanswered) after ``delay`` seconds."""

    status: int | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None  # a regular expression searched in the path
    watch: bool | None = None  # None: watches and other requests alike
    times: int | None = None  # None: until removed
    hits: int = 0

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        """Whether this rule applies to the request."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return self.path is None or re.search(self.path, path) is not None


class Faults:
    """The fault rules of one emulator; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._drops = 0

    def fail(
        self,
        status: int = 500,
        *,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        times: int | None = None,
    ) -> Rule:
        """Answer matching requests with ``status`` (0 drops the connection without an answer)."""
        return self._add(Rule(status=status, method=method, path=path, watch=watch, times=times))

    def slow(
        self,
        seconds: float,
        *,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = False,
        times: int | None = None,
    ) -> Rule:
        """Delay matching requests (then answer them normally)."""
        return self._add(Rule(delay=seconds, method=method, path=path, watch=watch, times=times))

    def drop_watches(self) -> None:
        """End every open watch now, abruptly, as a broken connection would."""
        with self._lock:
            self._drops += 1

    def remove(self, rule: Rule) -> None:
        """Stop one rule."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def drops(self) -> int:
        """How many times watches were dropped (a watch started before a change ends)."""
        with self._lock:
            return self._drops

    def match(self, method: str, path: str, is_watch: bool) -> tuple[int | None, float]:
        """The status to answer with (None: answer normally) and the delay before answering."""
        with self._lock:
            status: int | None = None
            delay = 0.0
            for rule in self._rules:
                if rule.matches(method, path, is_watch):
                    rule.hits += 1
                    delay = max(delay, rule.delay)
                    if rule.status is not None:
                        status = rule.status
                        break
            return status, delay

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule
