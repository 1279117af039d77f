"""Unit tests of edge.publish."""
