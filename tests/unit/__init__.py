"""Unit tests, mirroring the package: synthetic data, one part at a time."""
