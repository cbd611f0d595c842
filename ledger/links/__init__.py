"""Signed links for recipients: unsubscribe tokens and the clicks they record."""
