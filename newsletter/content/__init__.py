"""Content (pure): the taxonomy, the Issue and Summary dataclasses, reading the month folders."""
