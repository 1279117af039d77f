"""Unit tests of edge.detect."""
