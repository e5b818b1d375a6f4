"""Allow ``python -m meshrules``."""

from meshrules.cli import main

main()
