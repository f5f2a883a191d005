"""The command line's subcommands, one module per kind; ``run.py`` is the entry point.

Each module has ``add_*(commands)`` functions that add subparsers (handlers set as
``func``) and the ``cmd_*`` handlers themselves. Handlers import what they need inside the
function, so ``run.py models`` or ``run.py reversal --model`` never start Ray or MLflow.
This package sits above every stage of ``pipelines``: nothing in the pipeline imports it.
"""
