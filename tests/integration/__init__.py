"""Unit tests of edge.integration."""
