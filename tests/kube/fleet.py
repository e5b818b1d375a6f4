"""A management cluster and registered clusters on the emulator, seeded with the bundled scenario.

`fleet()` starts them (registration runs through the real code path), yields a `Fleet`, and stops
everything it started — controllers first, emulators last. Settings are shrunk so the controller
reacts in tens of milliseconds and gives up on a silent API server within a second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshrules.emit.naming import OWNER_LABEL
from meshrules.kube import resources as R
from meshrules.kube.apply import ObjectKey, up_to_date, with_owner
from meshrules.kube.client import KubeCluster, Timeouts
from meshrules.kube.controller import Controller, ControllerSettings
from meshrules.kube.informer import Backoff
from meshrules.kube.leader import LeaseTiming
from meshrules.kube.live import LiveCluster, live_scenario
from meshrules.kube.registration import register
from meshrules.kube.translation import Translate, Translation

from .conftest import BOOKINFO, bundled_objects, write_kubeconfig
from .emulator import Emulator
from .translate_stub import stub_translate

CLIENT = Timeouts(connect=0.5, read=1.0)
OUTPUT_KINDS = {(r.group, r.kind) for r in R.EMITTED}


def fast_settings(identity: str, **overrides: Any) -> ControllerSettings:
    """Controller settings for tests: quick debounce, back-off, lease and watch turnover."""
    values: dict[str, Any] = {
        "identity": identity,
        "debounce": 0.05,
        "max_delay": 0.5,
        "health_interval": 0.1,
        "watch_seconds": 5.0,
        "backoff": Backoff(0.05, 0.4),
        "lease": LeaseTiming(lease=1.0, renew_deadline=0.6, retry=0.1),
        "resync": 30.0,
    }
    values.update(overrides)
    return ControllerSettings(**values)


def bundled_policies() -> list[dict[str, Any]]:
    """The bundled scenario's policy objects, as written in its files."""
    docs: list[dict[str, Any]] = []
    for file in sorted((BOOKINFO / "policies").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(file.read_text()) if d)
    return docs


@dataclass
class Fleet:
    """Emulated clusters and the controllers running against them."""

    mgmt: Emulator
    remotes: dict[str, Emulator]
    tmp: Path
    controllers: list[Controller] = field(default_factory=list)

    def management(self, identity: str = "") -> KubeCluster:
        """A client of the management cluster."""
        file = write_kubeconfig(self.tmp / f"mgmt-{identity or 'admin'}", {"mgmt": self.mgmt})
        return KubeCluster.from_kubeconfig("mgmt", file, name="management", timeouts=CLIENT, identity=identity)

    def controller(
        self, identity: str = "replica-a", translate: Translate = stub_translate, **settings: Any
    ) -> Controller:
        """Start a controller replica; it is stopped with the fleet."""

        def connect(name: str, kubeconfig: str) -> KubeCluster:
            client = KubeCluster.from_kubeconfig_text(kubeconfig, name=name, timeouts=CLIENT, identity=identity)
            client.served_ttl = 0.2  # notice CRDs installed during a test
            return client

        ctl = Controller(self.management(identity), translate, connect, fast_settings(identity, **settings))
        self.controllers.append(ctl)
        return ctl.start()

    def expected(self, translate: Translate = stub_translate) -> Translation:
        """The translation of what the emulators hold now (the oracle the controller must match)."""
        clusters = []
        for name, emu in sorted(self.remotes.items()):
            inputs = [o for o in emu.store.objects() if not _is_output(o)]
            config = yaml.safe_load((BOOKINFO / "clusters" / name / "cluster.yaml").read_text())["spec"]
            clusters.append(LiveCluster(name, inputs, config.get("clusterDomain"), config.get("region")))
        policies = [o for r in R.POLICIES for o in self.mgmt.store.objects(r)]
        return translate(live_scenario(clusters, policies))

    def outputs_match(self, name: str, translation: Translation) -> bool:
        """Whether cluster ``name`` holds exactly the owned outputs ``translation`` asks for."""
        assert translation.outputs is not None
        desired = {ObjectKey.of(o): with_owner(o) for o in translation.outputs.objects.get(name, ())}
        live = {ObjectKey.of(o): o for o in self.remotes[name].store.objects() if _is_output(o)}
        return set(live) == set(desired) and all(up_to_date(d, live[k]) for k, d in desired.items())

    def statuses_match(self, translation: Translation) -> bool:
        """Whether every policy's status is the translated one, for its current generation."""
        for res in R.POLICIES:
            for obj in self.mgmt.store.objects(res):
                meta = obj["metadata"]
                ref = f"{obj['kind']} {meta['namespace']}/{meta['name']}"
                want = {"observedGeneration": meta["generation"], **translation.statuses[ref]}
                # `trust` is the controller's own part of a VirtualMesh's status (test_trust_live.py).
                if {k: v for k, v in (obj.get("status") or {}).items() if k != "trust"} != want:
                    return False
        return True

    def converged(self, translate: Translate = stub_translate, clusters: Iterator[str] | None = None) -> bool:
        """Outputs of ``clusters`` (default: all) and every status match the oracle."""
        expected = self.expected(translate)
        names = list(clusters) if clusters is not None else list(self.remotes)
        return all(self.outputs_match(n, expected) for n in names) and self.statuses_match(expected)


def _is_output(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(OWNER_LABEL) == "meshrules-system" and (R.group_of(obj["apiVersion"]), obj["kind"]) in OUTPUT_KINDS
    )


@contextlib.contextmanager
def fleet(
    tmp: Path,
    clusters: tuple[str, ...] = ("cluster-1", "cluster-2", "cluster-3"),
    without: tuple[R.ApiResource, ...] = (),
) -> Iterator[Fleet]:
    """Start the management cluster and ``clusters`` (not serving ``without``), register them, seed
    policies; stop all afterwards."""
    started: list[Emulator] = []
    result: Fleet | None = None
    try:
        mgmt = Emulator("mgmt").start()
        started.append(mgmt)
        mgmt.seed(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "meshrules-system"}}, *bundled_policies()]
        )
        remotes: dict[str, Emulator] = {}
        for name in clusters:
            emu = Emulator(name, resources=tuple(r for r in R.ALL if r not in without)).start()
            started.append(emu)
            emu.seed(bundled_objects(name))
            remotes[name] = emu
        result = Fleet(mgmt, remotes, tmp)
        admin_mgmt = result.management()
        for name, emu in remotes.items():
            file = write_kubeconfig(tmp / f"admin-{name}", {name: emu})
            remote = KubeCluster.from_kubeconfig(name, file, timeouts=CLIENT)
            config = yaml.safe_load((BOOKINFO / "clusters" / name / "cluster.yaml").read_text())["spec"]
            register(
                name,
                remote,
                admin_mgmt,
                server=emu.url,
                cluster_domain=config.get("clusterDomain"),
                region=config.get("region"),
            )
        yield result
    finally:
        if result is not None:
            for ctl in result.controllers:
                ctl.stop()
        for emu in started:
            emu.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
