"""Inference backends behind one interface (:class:`vsvsr.runtime.engine.Engine`)."""
