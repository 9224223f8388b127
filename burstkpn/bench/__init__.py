"""Benchmarks: a library (methods, tables, HTML and figures, the real-image cases) and the
commands built on it (``bench quality``, ``ablation``, ``restore``, ``real``, ``video``,
``motion``, ``speed``)."""
