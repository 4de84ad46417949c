"""The conformance suite's core: expectations (data), coverage, probe designs, verdicts, torch
facts."""
