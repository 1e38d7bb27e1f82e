"""Lower a calibrated hgq model to an exact fixed-point graph, distributed arithmetic and Amaranth HDL."""
