"""The engine: layer specs, the analysis of a network, receptive fields, size arithmetic, units and errors.

Pure: it imports the standard library only (no NumPy, Typer or Rich), and
nothing else of convcalc. Kept free of re-exports so that the command line can
import ``engine.errors`` at start-up without loading the rest.
"""
