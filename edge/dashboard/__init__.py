"""``edge dashboard``: collects the published counts of every site, keeps them, charts them.

A separate service (the ``dashboard`` extra), never installed on the counting boxes. It only
ever sees what the egress gate let out: anonymous counts per window, health figures and the
public notice. ``store`` writes, ``queries`` reads, ``ingest`` subscribes, ``api`` serves.
"""
