"""``edge setup``: the installer's page to place a camera's lines and zones.

The picture it shows is the scene's background (a temporal median, in which people and vehicles
vanish) at no more than 1/8 of the source's linear resolution and 320 pixels wide, so no face or
plate can be read; live detections are drawn as boxes and short trails, never as pixels. Saving
writes the configuration file back, comments kept, only once the legal gate accepts it.
"""
