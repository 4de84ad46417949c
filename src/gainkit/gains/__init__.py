"""Gains for any torch activation: resolving a user's activation and its gain sheet."""
