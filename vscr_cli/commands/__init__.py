"""One module per subcommand: each defines NAME and a thin ``command`` over importable functions."""
