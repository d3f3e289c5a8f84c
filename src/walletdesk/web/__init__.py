"""Server-rendered pages and their static files."""
