"""``mobilekit search``: a multi-objective search over compression and quantization recipes, each trial a real build.

:mod:`~mobilekit.search.knobs` is the recipe space (one registered knob per setting), :mod:`~mobilekit.search.measures`
what is measured on each trial's bundle (objectives and budgets), :mod:`~mobilekit.search.trials` runs trial builds
here or on Ray, :mod:`~mobilekit.search.study` drives the Optuna study and :mod:`~mobilekit.search.results` writes
the Pareto table, ``search.html`` and the chosen ``mobilekit.yaml``.
"""
