"""Out of the box: sinks, the durable spool and MQTT.

Only what the egress gate admitted reaches them."""
