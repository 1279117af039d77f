"""After the detector: detections, geometry, tracking, riders, counting, windows.

Track ids stay in memory, inside this package."""
