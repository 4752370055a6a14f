"""Typed errors: each names the function, the problem and the fix."""

from __future__ import annotations


class VsvsrError(Exception):
    """Base class of every error vsvsr raises on purpose."""


class UnknownModelError(VsvsrError, KeyError):
    """A model name that is neither built in nor a readable file."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ClipFormatError(VsvsrError, ValueError):
    """A clip whose format, size or properties the filter cannot take."""


class ModelFileError(VsvsrError, ValueError):
    """A model file that is missing, corrupt or lacks vsvsr metadata."""


class BackendUnavailableError(VsvsrError, RuntimeError):
    """A backend whose packages or hardware are absent."""


class MissingDependencyError(VsvsrError, ImportError):
    """An optional package that a feature needs; the message names the extra to install."""


class StateFileError(VsvsrError, ValueError):
    """A saved recurrent state that belongs to another model, scale, size or clip."""


class NonFiniteError(VsvsrError, FloatingPointError):
    """NaN or infinity in a frame or in a network output."""
