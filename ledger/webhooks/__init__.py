"""Webhooks: every consent change, signed (Standard Webhooks), sent at least once in order."""
