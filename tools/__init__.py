"""Command-line tools of gainkit; each module is thin over the gainkit core."""
