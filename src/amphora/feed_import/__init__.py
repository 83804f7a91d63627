"""The migration bridge: bring a show in from any public feed (or an Amphora export), keep it in
sync with the old host, and export everything to take it elsewhere."""
