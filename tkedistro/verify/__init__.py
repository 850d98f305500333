"""``tkedistro verify``: checks a release folder or a pushed image on the receiving side."""
