"""Sessions shared across gateway instances: the Redis implementation of
:class:`sessions.Backend`. See the README's "Running several instances"."""
