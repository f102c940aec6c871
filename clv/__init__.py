"""Customer lifetime value: transactions -> RFM -> BG/NBD + Gamma-Gamma -> CLV, segments,
product CLV affinity. Imports nothing else of marginrank."""
