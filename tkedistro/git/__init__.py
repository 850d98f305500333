"""The git layer: the one repository class, how a patch enters a tree, the upstream mirror."""
