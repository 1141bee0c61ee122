"""An example third-party plugtrt plugin package: a custom operator and its converter
(``border``), a converter for an op the built-ins lack (``erf``), an override of a built-in
(``gelu``), a decomposition (``logaddexp``) and a partitioner (``whole_graph``). Each module is
one plugin, registered through the ``plugtrt`` entry-point group; plugtrt never imports them
by name."""
