"""Allow ``python -m strongroom``."""

from strongroom.cli.app import main

main()
