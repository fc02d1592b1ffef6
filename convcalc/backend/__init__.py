"""The vectorized NumPy kernels behind ``convcalc.functional`` (internal)."""
