"""What convcalc does with a network beyond analysing it: compare, solve, explain, execute."""
