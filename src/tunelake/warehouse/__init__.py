"""The warehouse: table specs, the SQL models and their graph, the engines that run them, the serving files, quality
gates and exports (Synapse, gold Parquet, Power BI)."""
