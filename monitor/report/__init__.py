"""The advisory history: reading it from the store, the HTML report, terminal and data exports,
Atom feeds and the read-only web server."""
