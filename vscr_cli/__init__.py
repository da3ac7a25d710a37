"""vscr: weakly-supervised video actor-action segmentation (VSCR) as a command-line toolkit."""

__version__ = "0.1.0"
