"""vpipe: a resumable batch video-stylization pipeline."""

from pipeline import quiet

__version__ = "0.1.0"

quiet.install()  # every vpipe process (the command and its workers) imports this package first
