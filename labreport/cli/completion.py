"""`labreport completion bash|zsh|fish`: the shell completion script (click's own).

    labreport completion bash > ~/.local/share/bash-completion/completions/labreport
    labreport completion zsh  > "${fpath[1]}/_labreport"
    labreport completion fish > ~/.config/fish/completions/labreport.fish
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.option("--prog-name", default="labreport", show_default=True, hidden=True)
def command(shell: str, prog_name: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish)."""
    from click.shell_completion import get_completion_class

    from labreport.cli import cli

    cls = get_completion_class(shell)
    assert cls is not None
    var = "_" + prog_name.replace("-", "_").replace(" ", "_").upper() + "_COMPLETE"
    click.echo(cls(cli, {}, prog_name, var).source())
