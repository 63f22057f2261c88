"""The library version, stated once (the package metadata and result provenance read it)."""
__version__ = "0.1.0"
