"""Unit tests of edge.legal."""
