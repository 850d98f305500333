"""What a release ships besides its binaries: component images (OCI archives), upstream-style
release tarballs, checksums, an SPDX SBOM and an in-toto provenance statement."""
