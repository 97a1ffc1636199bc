"""Notification connectors. Adding a kind is one module plus one line in ``registry``."""
