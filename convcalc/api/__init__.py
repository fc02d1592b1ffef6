"""The Python API above the engine's names: ``summary()`` and what it returns, and the sources it
reads, resolved as the command line resolves them (``source.py``).

Nothing here imports Typer; Rich is imported only to render a ``Summary`` on a Rich console.
"""
