"""Episodes: the items of a show, with their media, transcripts and chapters."""
