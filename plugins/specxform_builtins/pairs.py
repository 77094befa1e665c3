"""The built-in (source, target) pairs, each declared with its own defaults."""

from __future__ import annotations

import specxform
from specxform import Registry

#: (source, target, default teacher): the pairs of the paper plus the offline teacher.
BUILTIN_PAIRS: tuple[tuple[str, str, str | None], ...] = (
    ("cense", "pann", "pann_resnet38"),
    ("cense", "yamnet", "yamnet"),
)


@specxform.hookimpl
def specxform_add_pairs(registry: Registry) -> None:
    for source, target, teacher in BUILTIN_PAIRS:
        registry.add_pair(
            source,
            target,
            teacher=teacher,
            description=f"{source} third-octave levels to the {target} classifier's Mel input",
        )
