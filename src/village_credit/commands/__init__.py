"""CLI command groups. Each module defines ``register(app)``; cli.py wires them.

Commands are thin: parse arguments, call the public API, print a summary.
"""
