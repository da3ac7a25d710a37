"""The work of each stage as importable functions; what each stage's store holds is declared in
vscr_cli.schemas."""
