"""Built-in student: the companion code's residual CNN on the PINV log-Mel."""

from __future__ import annotations

from typing import Any

import specxform
from specxform import Registry


def residual_cnn(*args: Any, **kwargs: Any) -> Any:
    """``specxform.students.residual_cnn``, imported on use (torch is slow to import)."""
    from specxform.students import residual_cnn as build

    return build(*args, **kwargs)


@specxform.hookimpl
def specxform_add_students(registry: Registry) -> None:
    registry.add_student(
        "residual_cnn",
        factory=residual_cnn,
        description="pinv - conv(pinv): 5 replication-padded 3x5 convolutions, 64 channels "
        "(186,497 parameters)",
    )
