"""`meshrules apply` without a controller: read the registered clusters once, translate, apply (or diff).

The same steps and the same safety rules as the controller, in one pass: outputs are pruned only
when every registered cluster could be read; an unreachable cluster is skipped and reported,
never treated as empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from meshrules.errors import ClusterError
from meshrules.kube import resources as R
from meshrules.kube.apply import ApplyPlan, ApplyResult, execute, plan_apply, read_live
from meshrules.kube.cluster import Cluster
from meshrules.kube.live import LiveCluster, is_output, read_objects, with_live_clusters
from meshrules.kube.registration import list_clusters, registered_kubeconfig
from meshrules.kube.translation import Translate, Translation
from meshrules.model.common import MANAGEMENT_NAMESPACE
from meshrules.model.scenario import Scenario

# (cluster name, kubeconfig text) → a client for it.
Connect = Callable[[str, str], Cluster]


@dataclass
class ClusterOutcome:
    """One cluster's part of a one-shot apply."""

    name: str
    plan: ApplyPlan | None = None
    result: ApplyResult | None = None
    error: ClusterError | None = None


@dataclass
class OneShot:
    """Everything a one-shot apply did or would do."""

    translation: Translation
    scenario: Scenario
    clusters: list[ClusterOutcome] = field(default_factory=list)


def apply_once(
    management: Cluster,
    scenario: Scenario,
    connect: Connect,
    translate: Translate,
    *,
    dry_run: bool = False,
    owner: str = MANAGEMENT_NAMESPACE,
) -> OneShot:
    """Read every registered cluster, translate ``scenario``'s policies against them, apply per cluster."""
    clients: dict[str, Cluster] = {}
    outcomes: dict[str, ClusterOutcome] = {}
    live: list[LiveCluster] = []
    for row in list_clusters(management, owner=owner):
        outcome = outcomes[row.name] = ClusterOutcome(row.name)
        try:
            cluster = connect(row.name, registered_kubeconfig(management, row.name, owner=owner))
            inputs = [o for o in read_objects(cluster, R.CLUSTER_INPUTS) if not is_output(o, owner)]
        except ClusterError as err:
            outcome.error = err
            continue
        clients[row.name] = cluster
        live.append(LiveCluster(row.name, inputs, row.cluster_domain, row.region, row.secret_name))
    full = with_live_clusters(scenario, live)
    translation = translate(full)
    done = OneShot(translation=translation, scenario=full, clusters=[outcomes[n] for n in sorted(outcomes)])
    if translation.outputs is None:
        return done
    complete = len(clients) == len(outcomes)
    for name, cluster in sorted(clients.items()):
        outcome = outcomes[name]
        objects = translation.outputs.objects.get(name, ())
        patches = translation.outputs.patches.get(name, ())
        try:
            current = read_live(cluster, objects, patches)
            outcome.plan = plan_apply(name, objects, current, patches=patches, owner=owner, prune=complete)
            if not dry_run:
                outcome.result = execute(outcome.plan, cluster)
        except ClusterError as err:
            outcome.error = err
    return done
