"""Tools on top of every layer: benchmarks, the demo and figure scripts. Nothing below imports them."""
