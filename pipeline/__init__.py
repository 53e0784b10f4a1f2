"""vpipe: a resumable batch video-stylization pipeline."""

__version__ = "0.1.0"
