"""Unit tests of edge.analytics."""
