"""The project report: one self-contained HTML file (figures embedded as PNG) built from the metric layer."""
