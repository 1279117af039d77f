"""Unit tests of edge.vision."""
