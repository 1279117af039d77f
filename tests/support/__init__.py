"""Unit tests of edge.support."""
