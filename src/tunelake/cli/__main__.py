"""`python -m tunelake.cli`: the same as the `tunelake` command."""

from tunelake.cli import main

main()
