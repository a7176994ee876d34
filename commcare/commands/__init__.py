"""The command groups: thin adapters that parse, call one domain function, and render."""
