"""Suppression lists between providers: our export, and other providers' exports imported."""
