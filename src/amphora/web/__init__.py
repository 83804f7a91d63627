"""Server-rendered pages and the back office."""
