"""Public delivery of stored files: media, artwork, transcripts, chapters."""
