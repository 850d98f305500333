"""The local multi-node cluster the conformance suite runs on, and its add-ons."""
