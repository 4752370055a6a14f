"""What a model says about itself: enough for the runtime to bind, shape and check it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from vsvsr.errors import ModelFileError

#: Key of the descriptor JSON in an ONNX file's ``metadata_props``.
ONNX_METADATA_KEY = "vsvsr.descriptor"
#: Bumped when the meaning of a descriptor field changes.
DESCRIPTOR_VERSION = 1


@dataclass(kw_only=True, frozen=True)
class ModelDescriptor:
    """A frozen description of one exported network.

    Recurrent models take inputs ``lr``, ``lr_prev``, ``state``, ``step`` and give ``sr``,
    ``state_out``; ``state_channels`` is the channel count of the state, which has the LR
    frame's height and width.
    """

    name: str
    arch: str
    scale: int
    recurrent: bool
    state_channels: int = 0
    step_clamp: int = 0
    size_multiple: int = 1
    fixed_size: tuple[int, int] | None = None  #: (width, height) of the LR input, if static
    config: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    version: int = DESCRIPTOR_VERSION

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ModelFileError(f"model {self.name!r}: scale must be >= 1, got {self.scale}")
        if self.recurrent and self.state_channels < 1:
            raise ModelFileError(f"model {self.name!r}: a recurrent model needs state_channels >= 1")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "model") -> ModelDescriptor:
        try:
            data = json.loads(text)
            if data.get("version", 0) > DESCRIPTOR_VERSION:
                raise ModelFileError(
                    f"{source}: descriptor version {data['version']} is newer than this vsvsr "
                    f"understands ({DESCRIPTOR_VERSION}); upgrade vsvsr"
                )
            if data.get("fixed_size") is not None:
                data["fixed_size"] = tuple(data["fixed_size"])
            return cls(**data)
        except ModelFileError:
            raise
        except (ValueError, TypeError) as exc:
            raise ModelFileError(f"{source}: unreadable vsvsr descriptor ({exc})") from exc
