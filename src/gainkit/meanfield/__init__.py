"""Mean-field theory of deep random networks: the length map, chi_1 and depth scales (theory), and
the finite-width noise model of a probe's statistics (finitewidth)."""
