"""commcare: a case manager for community residents' committees."""

__version__ = "0.1.0"
