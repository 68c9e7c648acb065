"""The labreport subcommands: name → module (each has ``command``, a click.Command),
imported only when that command runs."""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "collect": "labreport.cli.collect",
    "import": "labreport.cli.import_cmd",
    "grade": "labreport.cli.grade",  # a whole class's reports: one report each + summary.html/csv
    "analyze": "labreport.cli.analyze",
    "render": "labreport.cli.render",
    "demo": "labreport.cli.demo",
    "diff": "labreport.cli.diff",
    "doctor": "labreport.cli.doctor",
    "schema": "labreport.cli.schema",
    "trace": "labreport.cli.trace",
    "completion": "labreport.cli.completion",
}

