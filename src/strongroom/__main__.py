"""Allow ``python -m strongroom``."""

from strongroom.cli.entry import main

main()
