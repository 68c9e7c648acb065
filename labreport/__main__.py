"""``python3 -m labreport``: the labreport command."""

from labreport.cli import run

if __name__ == "__main__":
    run()
