"""MQS: one STAC API over many Earth-observation catalogues."""

__version__ = "0.1.0"
