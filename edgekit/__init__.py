"""edgekit: take a trained model to edge and embedded hardware, and measure how it runs there."""

__version__ = "0.1.0"
