"""Pictures in: frames, recorded and live sources, the motion gate.

Frames go no further than the detector."""
