from opchain.cli import app

app(prog_name="opchain")
