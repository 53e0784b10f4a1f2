"""`python -m pipeline.cli`: the same as the `vpipe` script."""

from pipeline.cli import main

main()
