"""`python -m hyperdist` runs the command line."""
from .cli import main

main(prog_name="hyperdist")
