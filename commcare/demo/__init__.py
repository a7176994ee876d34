"""The demo: a realistic, fictional community generated from a seed into a separate database."""
