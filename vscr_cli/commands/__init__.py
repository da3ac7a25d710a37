"""One module per subcommand: each defines NAME and a thin ``command``: its options (declared from
``vscr_cli.settings``), its refusals (the output rule, then its inputs: ``options.check_inputs``), and
only then the import and a call of its stage's ``run``."""
