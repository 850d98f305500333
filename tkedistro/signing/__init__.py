"""Signing keys and signatures: keys a maintainer makes or brings, detached file signatures,
DSSE envelopes and the images' sigstore signatures. Below everything that signs or verifies."""
