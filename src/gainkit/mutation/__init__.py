"""Evidence of the gate's sharpness: the mutant catalogue and the runner that kills mutants and
counts false alarms."""
