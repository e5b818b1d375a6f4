"""`meshrules crds`: the CustomResourceDefinitions, with schemas generated from the models."""

from __future__ import annotations

from meshrules.cli.app import app, handles_errors
from meshrules.cli.output import dump_yaml, write
from meshrules.model.crds import all_crds


@app.command()
@handles_errors
def crds() -> None:
    """Print every meshrules CRD as YAML (pipe it to `kubectl apply -f -`)."""
    write(dump_yaml(all_crds()))
