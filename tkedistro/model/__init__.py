"""The typed, frozen release manifest and patch-file models, and ``validate``."""
