"""Media: uploads, probing, artwork and derived files."""
