"""The routing file (``CALLWATCH_CONFIG`` / ``CALLWATCH_CONFIG_FILE``): ``parse`` reads it,
``matchers`` and ``storms`` check its match and incident sections, ``load`` is the one
loader the edges call (settings plus the parsed file)."""
