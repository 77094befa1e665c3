"""Built-in students: the companion code's residual CNN, and the coarse-rate ``coarse_texture``."""

from __future__ import annotations

from typing import Any

import specxform
from specxform import Registry


def residual_cnn(*args: Any, **kwargs: Any) -> Any:
    """``specxform.transcoders.students.residual_cnn``, imported on use (torch imports slowly)."""
    from specxform.transcoders.students import residual_cnn as build

    return build(*args, **kwargs)


def coarse_texture(*args: Any, **kwargs: Any) -> Any:
    """``specxform_builtins.coarse_texture.coarse_texture``: the coarse-rate student."""
    from specxform_builtins.coarse_texture import coarse_texture as build

    return build(*args, **kwargs)


@specxform.hookimpl
def specxform_add_students(registry: Registry) -> None:
    registry.add_student(
        "residual_cnn",
        factory=residual_cnn,
        description="pinv - conv(pinv): 5 replication-padded 3x5 convolutions, 64 channels "
        "(186,497 parameters)",
        default=True,  # the student of every pair that names none
    )
    registry.add_student(
        "coarse_texture",
        factory=coarse_texture,
        description="refines at the source's frame rate (48-channel residual 3x5 stack), then "
        "a fixed-noise texture and two 3x3 convolutions at the target rate",
    )
