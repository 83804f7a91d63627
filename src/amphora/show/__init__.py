"""Shows: the catalog's top level, with series, team members, artwork and Podcasting 2.0 data."""
