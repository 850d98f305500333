"""The command line: the typer app, one module per command group, errors to exit codes."""
