from vscr_cli.cli import main

main()
