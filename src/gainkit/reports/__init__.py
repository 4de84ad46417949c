"""Merging the suite's results across releases, and the Markdown and PNG reports of them."""
