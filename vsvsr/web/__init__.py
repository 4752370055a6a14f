"""``vsvsr serve``: a local web page to pick a video, preview a frame and run the upscale.

Modules: :mod:`~vsvsr.web.paths` (every client path confined to ``--root``),
:mod:`~vsvsr.web.store` (the SQLite job store), :mod:`~vsvsr.web.jobs` (the queue and the
worker processes), :mod:`~vsvsr.web.worker` (what runs in a worker: ``vsvsr upscale``'s own
:func:`~vsvsr.cli.upscale.upscale`), :mod:`~vsvsr.web.media` (clip facts and the frame
preview), :mod:`~vsvsr.web.app` (the Starlette routes) and ``static/`` (the page: plain
HTML/JS/CSS, no build step, nothing fetched from elsewhere).

Starlette and uvicorn come with ``pip install 'vsvsr[web]'``; importing this package
imports neither.
"""
