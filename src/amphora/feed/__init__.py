"""Feeds: building RSS and JSON Feed from plain data, serving them cached, and telling
aggregators when they change."""
