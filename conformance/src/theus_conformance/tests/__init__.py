"""The shipped conformance tests. Every test takes the ``backend`` fixture (directly or through
``make_engine``/``engine``) and reaches the backend only through ``theus``."""
