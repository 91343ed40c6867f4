"""Charts (Vega-Lite through altair) and the self-contained monthly report."""
