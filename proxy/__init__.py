"""turnout runtime: the data plane, its configuration and the command line."""

# Imported first so that router.native decides, before any proxy module loads, whether the
# compiled build or the sources run (see router/native.py).
import router  # noqa: F401
