"""The legal frame: policy, forbidden uses, the start-up and egress gates, the audit log,
the public notice."""
