"""The command line: the outermost layer, where files are read and answers are printed."""

from meshrules.cli.app import app, main

__all__ = ["app", "main"]
