"""The release-build operation: source, binaries, artifacts and publish, for every caller."""
