"""Showing results: the output formats, the tables each command describes, and their renderers."""
