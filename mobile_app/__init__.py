"""The Kivy patient app: measure at home, see how you are doing, never miss a revisit.

It embeds the edge agent in home mode, so readings take the same outbox → MQTT → cloud
path as a centre's. May import protocols, device_drivers, edge_agent and simulators —
never cloud.
"""
