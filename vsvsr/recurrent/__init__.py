"""Recurrent inference that is exact under any request order (plain Python, no VapourSynth)."""
