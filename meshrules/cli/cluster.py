"""`meshrules cluster register | deregister | list` (spec §8): the command-line edge of `kube.registration`.

Register with `app.add_typer(cluster_app, name="cluster")`. Nothing here prints a kubeconfig or a
token: registration reports object names only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from meshrules.cli.app import handles_errors
from meshrules.cli.output import OutputFormat, dump_json, dump_yaml, print_table, write
from meshrules.kube.registration import deregister, list_clusters, register, registered_kubeconfig
from meshrules.model.common import MANAGEMENT_NAMESPACE

cluster_app = typer.Typer(
    help="Register clusters with the management cluster, remove them, list them.",
    no_args_is_help=True,
)

KUBECONFIG_HELP = "Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)."


@cluster_app.command("register")
@handles_errors
def register_command(
    name: str = typer.Argument(..., help="Cluster name (a DNS-1123 label)."),
    remote_context: str = typer.Option(..., "--remote-context", help="Kubeconfig context of the cluster to register."),
    mgmt_context: str | None = typer.Option(
        None, "--mgmt-context", help="Context of the management cluster (default: current)."
    ),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help=KUBECONFIG_HELP),
    server: str | None = typer.Option(
        None, "--server", help="API server URL the management cluster reaches it at (default: the context's)."
    ),
    cluster_domain: str | None = typer.Option(
        None, "--cluster-domain", help="Its cluster domain (default cluster.local)."
    ),
    region: str | None = typer.Option(None, "--region", help="Its region (default: read from its nodes)."),
    namespace: str = typer.Option(MANAGEMENT_NAMESPACE, "--namespace", help="The management namespace."),
    mesh_namespace: list[str] = typer.Option(
        [],
        "--mesh-namespace",
        help=(
            "A mesh control-plane namespace to allow the CSR exchange in (repeatable; it must exist). "
            "Added to istio-system, linkerd and the istiod / Linkerd control-plane namespaces found."
        ),
    ),
) -> None:
    """Create the service account, RBAC and kubeconfig Secret for a cluster, and its KubernetesCluster."""
    # Imported here: loading the kubernetes client costs every other command a tenth of a second.
    from meshrules.kube.client import KubeCluster

    remote = KubeCluster.from_kubeconfig(remote_context, kubeconfig, name=name)
    management = KubeCluster.from_kubeconfig(mgmt_context, kubeconfig, name="management")
    done = register(
        name,
        remote,
        management,
        server=server or remote.server,
        ca_pem=remote.ca_pem(),
        owner=namespace,
        cluster_domain=cluster_domain,
        region=region,
        mesh_namespaces=mesh_namespace,
    )
    verb = "registered" if done.writes else "already registered (nothing changed)"
    print(f"cluster `{name}` {verb}", file=sys.stderr)
    for key in done.remote:
        print(f"  {name}: {key}")
    for key in done.management:
        print(f"  management: {key}")


@cluster_app.command("deregister")
@handles_errors
def deregister_command(
    name: str = typer.Argument(..., help="Cluster name."),
    remote_context: str | None = typer.Option(
        None,
        "--remote-context",
        help="Context with rights to remove the RBAC registration created (default: the stored kubeconfig).",
    ),
    mgmt_context: str | None = typer.Option(
        None, "--mgmt-context", help="Context of the management cluster (default: current)."
    ),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help=KUBECONFIG_HELP),
    skip_remote: bool = typer.Option(
        False, "--skip-remote", help="Only clean the management cluster (the cluster is gone or unreachable)."
    ),
    namespace: str = typer.Option(MANAGEMENT_NAMESPACE, "--namespace", help="The management namespace."),
) -> None:
    """Remove a cluster: its outputs and patches, its service account and RBAC, its Secret and KubernetesCluster."""
    # Imported here: loading the kubernetes client costs every other command a tenth of a second.
    from meshrules.kube.client import KubeCluster

    management = KubeCluster.from_kubeconfig(mgmt_context, kubeconfig, name="management")
    remote = None
    if not skip_remote:
        if remote_context:
            remote = KubeCluster.from_kubeconfig(remote_context, kubeconfig, name=name)
        else:
            text = registered_kubeconfig(management, name, owner=namespace)
            remote = KubeCluster.from_kubeconfig_text(text, name=name)
    # Through its own stored kubeconfig the cluster's service account may not delete RBAC, and
    # deleting itself would revoke the token mid-way: then only outputs are removed.
    done = deregister(name, management, remote, owner=namespace, remove_access=remote_context is not None)
    for ref in done.removed:
        print(f"  removed {ref}")
    for ref in done.left:
        print(f"warning: left {ref} (pass --remote-context with an admin context to remove them)", file=sys.stderr)
    for ref, err in done.failed:
        print(f"error: could not remove {ref}: {err}", file=sys.stderr)
    if done.failed:
        raise typer.Exit(1)
    print(f"cluster `{name}` deregistered", file=sys.stderr)


@cluster_app.command("list")
@handles_errors
def list_command(
    mgmt_context: str | None = typer.Option(
        None, "--mgmt-context", help="Context of the management cluster (default: current)."
    ),
    kubeconfig: Path | None = typer.Option(None, "--kubeconfig", help=KUBECONFIG_HELP),
    namespace: str = typer.Option(MANAGEMENT_NAMESPACE, "--namespace", help="The management namespace."),
    output: OutputFormat = typer.Option(OutputFormat.table, "-o", "--output", help="table, yaml or json."),
) -> None:
    """List the registered clusters and their health."""
    # Imported here: loading the kubernetes client costs every other command a tenth of a second.
    from meshrules.kube.client import KubeCluster

    management = KubeCluster.from_kubeconfig(mgmt_context, kubeconfig, name="management")
    rows = list_clusters(management, owner=namespace)
    items = [
        {
            "name": r.name,
            "secretName": r.secret_name,
            "hasSecret": r.has_secret,
            "clusterDomain": r.cluster_domain,
            "region": r.region,
            "status": dict(r.status),
        }
        for r in rows
    ]
    if output == OutputFormat.yaml:
        write(dump_yaml(items))
    elif output == OutputFormat.json:
        write(dump_json(items))
    else:
        print_table(
            "Clusters",
            ["NAME", "DOMAIN", "REGION", "SECRET", "STATE", "MESSAGE"],
            [
                (
                    r.name,
                    r.cluster_domain or "cluster.local",
                    r.region or "-",
                    r.secret_name if r.has_secret else f"{r.secret_name} (missing)",
                    r.status.get("state", "-"),
                    r.status.get("message", ""),
                )
                for r in rows
            ],
        )
