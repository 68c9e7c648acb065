"""`labreport schema`: print the snapshot's JSON Schema (generated from the model)."""

from __future__ import annotations

import json

import click

from labreport.snapshot import json_schema


@click.command("schema")
def command() -> None:
    """Print the JSON Schema of snapshot.json."""
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
