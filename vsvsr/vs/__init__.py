"""VapourSynth glue: format checks, frame I/O, scene-change flags and the filters."""
