"""A small deterministic `Translate` for controller tests, until the real rules and emitters are wired.

It depends on what a real translation depends on — discovered destinations and policy specs — so
tests can check that the controller feeds it live inputs and writes what it returns:
- per destination, an owned DestinationRule (`<service>-meshrules`) for its host;
- per TrafficPolicy with `requestTimeout`, an owned VirtualService for every destination of its
  namespace (in the destination's cluster) carrying that timeout;
- per policy, status `ACCEPTED` with how many destinations it touched and its timeout.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from meshrules.emit.naming import owned_metadata, sort_objects
from meshrules.emit.output import EmitResult
from meshrules.kube.translation import Translation
from meshrules.model.scenario import Scenario
from meshrules.pipeline import analyse


def stub_translate(scenario: Scenario) -> Translation:
    """Outputs, statuses and discovery for ``scenario`` (pure)."""
    analysis = analyse(scenario)
    found = analysis.discovery
    objects: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for dest in found.destinations:
        objects[dest.cluster].append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": owned_metadata(
                    f"{dest.service}-meshrules", dest.namespace, {"Destination": [f"meshrules-system/{dest.name}"]}
                ),
                "spec": {"host": dest.local_fqdn, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
            }
        )
    statuses: dict[str, dict[str, Any]] = {}
    for policy in scenario.policies:
        spec = policy.spec.model_dump(by_alias=True, exclude_none=True)
        timeout = (spec.get("policy") or {}).get("requestTimeout")
        touched = 0
        if policy.kind == "TrafficPolicy" and timeout:
            for dest in found.destinations:
                if dest.namespace != policy.namespace:
                    continue
                touched += 1
                objects[dest.cluster].append(
                    {
                        "apiVersion": "networking.istio.io/v1",
                        "kind": "VirtualService",
                        "metadata": owned_metadata(
                            f"{dest.service}-{policy.metadata.name}"[:63],
                            dest.namespace,
                            {"TrafficPolicy": [f"{policy.namespace}/{policy.name}"]},
                        ),
                        "spec": {
                            "hosts": [dest.local_fqdn],
                            "http": [{"timeout": timeout, "route": [{"destination": {"host": dest.local_fqdn}}]}],
                        },
                    }
                )
        statuses[policy.ref] = {"state": "ACCEPTED", "destinations": touched, "timeout": timeout or "-"}
    outputs = EmitResult(objects={c: tuple(sort_objects(objs)) for c, objs in sorted(objects.items())})
    return Translation(outputs=outputs, statuses=statuses, discovery=found)
