"""An example third-party plugtrt plugin package (see ``erf``)."""
