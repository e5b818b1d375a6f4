"""Fixtures for the live-operation tests: emulated clusters on 127.0.0.1, kubeconfigs, bundled objects.

Every emulator a test starts is stopped by the fixture that made it; nothing listens anywhere but
loopback, and every client call has short timeouts so a broken test fails fast instead of hanging.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshrules.kube.client import KubeCluster, Timeouts
from meshrules.kube.scenario import load_scenario

from .emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
BOOKINFO = REPO / "simulator" / "scenarios" / "bookinfo-multicluster"
FAST = Timeouts(connect=1.0, read=3.0)

Emulators = Callable[..., Emulator]


def bundled_objects(cluster: str) -> list[dict[str, Any]]:
    """The bundled scenario's objects of ``cluster`` (without its `cluster.yaml`), as plain dicts."""
    scenario = load_scenario(BOOKINFO)
    (snap,) = [c for c in scenario.clusters if c.name == cluster]
    return [dict(o.body) for o in snap.objects]


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    """Start emulated clusters on demand; all are stopped when the test ends."""
    started: list[Emulator] = []

    def start(name: str = "cluster", **kwargs: Any) -> Emulator:
        emu = Emulator(name, **kwargs).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(emulators: Emulators) -> Emulator:
    """One emulated cluster."""
    return emulators("cluster-1")


def write_kubeconfig(path: Path, emus: dict[str, Emulator]) -> Path:
    """One kubeconfig file with a context per emulator (context name → emulator)."""
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for context, emu in emus.items():
        one = emu.kubeconfig(context)
        for key in ("clusters", "users", "contexts"):
            config[key].extend(one[key])
    config["current-context"] = next(iter(emus))
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def connect(emu: Emulator, tmp_path: Path, name: str | None = None, identity: str = "") -> KubeCluster:
    """A real client for ``emu`` through a kubeconfig file, with short timeouts."""
    file = write_kubeconfig(tmp_path / f"kubeconfig-{emu.name}-{emu.port}", {emu.name: emu})
    return KubeCluster.from_kubeconfig(emu.name, file, name=name or emu.name, timeouts=FAST, identity=identity)
