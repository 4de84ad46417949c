"""The patch series and the tool that checks, applies and reverts it on a torch target."""
