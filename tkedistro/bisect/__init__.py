"""``tkedistro bisect``: the first patch of a release's series after which a check fails."""
