"""``vsvsr farm``: scene-chunked, exact, resumable upscaling on a Ray cluster.

Modules: ``plan`` (chunks from reset points), ``manifest`` (the resumable record),
``tasks`` (what a worker runs), ``cluster`` (Ray: connect, remote tasks, progress board),
``driver`` (the whole job). Importing this package does not import Ray or VapourSynth.
"""
