"""grand_bench: run, reproduce and compare graph neural networks derived from differential equations."""

__version__ = "0.1.0"
