"""Recurrent inference exact under any request order (plain Python, no VapourSynth).

Named ``recurrence`` so it never shadows the filter function ``vsvsr.recurrent``.
"""
