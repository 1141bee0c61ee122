"""Built-in engine store plugins (hook ``plugtrt_engine_stores``)."""
