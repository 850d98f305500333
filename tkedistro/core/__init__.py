"""The bottom layer: errors and exit codes, paths, the process runner, files, locks, output."""
