"""CI workflows for a distro repo, rendered from the packaged templates (``tkedistro ci``)."""
