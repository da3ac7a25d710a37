"""One module per subcommand: each defines NAME and a thin ``command``: its options and a call of its stage's ``run``."""
