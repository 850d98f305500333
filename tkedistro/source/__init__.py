"""``_src/<release>``: the pinned upstream plus the series as one commit per patch."""
