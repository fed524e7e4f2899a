"""`python -m leadscore` runs the command line."""

from leadscore.cli import app

app(prog_name="leadscore")
