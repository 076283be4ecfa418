"""Reports, KPIs, the operations dashboard and the product timeline."""
