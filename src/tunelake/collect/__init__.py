"""The always-on collector (`tunelake collect`)."""
