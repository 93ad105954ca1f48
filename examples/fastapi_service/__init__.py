"""An example FastAPI service built on quatrix_async: one client per process, opened in the
lifespan, injected as a dependency. See ``app.py``."""
