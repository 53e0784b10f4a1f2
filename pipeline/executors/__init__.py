"""Executors run worker processes and turn what they say (or how they die) into events."""
