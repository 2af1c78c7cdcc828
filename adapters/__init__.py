"""Backend adapters: one package per backend kind, registered in :mod:`adapters.registry`."""
