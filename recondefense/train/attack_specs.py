"""The ``--attack`` spec of a training run: its ``+``-joined sources, ``gaussian:<sigma>`` noise and
``corruption[:names][@severities]`` (ImageNet-C), parsed."""

from __future__ import annotations

__all__ = ["attack_parts", "corruption_spec", "gaussian_sigma"]


def corruption_spec(part: str) -> tuple[tuple[str, ...], tuple[int, ...]] | None:
    """``"corruption[:name,name...][@severities]"`` -> (names, severities); None for other attacks.

    Severities are ``@3``, ``@1-3`` or ``@1,3,5`` (default 1-5); names default to all 15 ImageNet-C corruptions.

    Raises:
        ValueError: an unknown corruption name or a severity outside 1-5.
    """
    if part != "corruption" and not part.startswith(("corruption:", "corruption@")):
        return None
    from ..corruptions import CORRUPTIONS

    body = part.removeprefix("corruption")
    names_text, _, severity_text = body.removeprefix(":").partition("@")
    names = tuple(n for n in names_text.split(",") if n) or tuple(CORRUPTIONS)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"--attack {part!r}: unknown corruptions {unknown}; known: {sorted(CORRUPTIONS)}")
    try:
        if not severity_text:
            severities = (1, 2, 3, 4, 5)
        elif "-" in severity_text:
            low, high = (int(v) for v in severity_text.split("-"))
            severities = tuple(range(low, high + 1))
        else:
            severities = tuple(int(v) for v in severity_text.split(","))
    except ValueError:
        severities = ()
    if not severities or any(not 1 <= v <= 5 for v in severities):
        raise ValueError(f"--attack {part!r}: severities must be in 1-5 (@3, @1-3 or @1,3,5)")
    return names, severities


def attack_parts(attack: str) -> list[str]:
    """The triplet sources of ``--attack``, ``+``-separated (``pgd+corruption``: each batch draws one)."""
    return attack.split("+")


def gaussian_sigma(attack: str) -> float | None:
    """The sigma of ``"gaussian:<sigma>"`` (noise triplets), or None for the adversarial attacks (and bad numbers)."""
    if not attack.startswith("gaussian:"):
        return None
    try:
        return float(attack.removeprefix("gaussian:"))
    except ValueError:
        return None
