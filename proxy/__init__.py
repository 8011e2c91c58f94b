"""turnout runtime: the data plane, its configuration and the command line.

Importing this package imports nothing: entry points (proxy/cli.py, proxy/worker.py,
proxy/instance.py) choose the compiled build or the sources (proxy/native.py) before they import
the router or the data plane.
"""
