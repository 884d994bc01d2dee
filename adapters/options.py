"""What every adapter's options share, written once and framework-free.

- :class:`Options`: a frozen dataclass of the keyword options an adapter's entry points
  (``layer_lmn``, ``LayerLMN``, the monitors and callbacks) pass down to the cut and to the
  callables they measure; the other keywords go to :func:`lmn_core.lmn`.
- :data:`REDUCTIONS` and :func:`measures_on_device`: where ``lmn_core`` measures, by
  ``reduction=``.
- :data:`RULE_COMPILED_BY_DEFAULT`, :func:`checked_compile_rule` and :func:`rule_compiler`:
  whether the device path compiles the core's r² rule, by ``compile_rule=``.
- :data:`LMN_KEYWORDS`: the keywords of :func:`lmn_core.lmn` that every ``layer_lmn`` takes
  as explicit parameters beside its options, and :meth:`Options.split_call`, which parts a
  ``layer_lmn``'s arguments into the two.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import lmn_core

#: Where ``lmn_core`` measures: on the function's device, on the host, or on the device
#: when it is not the CPU (``"auto"``: on a CPU the host's fused kernels are faster).
REDUCTIONS = ("auto", "device", "host")

#: The frameworks whose compiler runs the core's r² rule unless ``compile_rule=False``. The
#: rule's first call on a new block shape, compiled against one operation at a time, on the
#: 2-core CPU (``python benchmarks/bench_gpu.py --device cpu --sections keras``): 0.24 s
#: against 1.09 s with ``jax.jit`` (JAX compiles each operation it runs alone too), 2.9 s
#: against 0.02 s with ``torch.compile``, which one measurement does not win back
#: (docs/design.md, section 3.3).
RULE_COMPILED_BY_DEFAULT = frozenset({"jax"})

OptionsType = TypeVar("OptionsType", bound="Options")

#: The keyword parameters of :func:`lmn_core.lmn`, in its order (``n_points``, ``memory_budget``, ...).
LMN_KEYWORDS = tuple(
    name
    for name, parameter in inspect.signature(lmn_core.lmn).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


def checked_reduction(reduction: str) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS`, else a ``ValueError`` naming them."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def measures_on_device(reduction: str, off_the_cpu: bool, possible: bool = True) -> bool:
    """Whether ``reduction`` measures on the device: ``"device"``, or ``"auto"`` off the CPU if possible."""
    if reduction == "auto":
        return off_the_cpu and possible
    return reduction == "device"


def checked_compile_rule(compile_rule: bool | None) -> bool | None:
    """``compile_rule`` if it is true, false or ``None``, else a ``TypeError``."""
    if compile_rule is not None and not isinstance(compile_rule, bool):
        raise TypeError(f"compile_rule must be True, False or None, got {compile_rule!r}")
    return compile_rule


def rule_compiler(
    compile_rule: bool | None, framework: str, compiler: Callable[..., Any]
) -> Callable[..., Any] | None:
    """The ``DevicePlan.compile`` of a device path: ``compiler``, or ``None`` for the eager rule.

    ``compile_rule`` ``None`` is the framework's default (:data:`RULE_COMPILED_BY_DEFAULT`).
    """
    if compile_rule is None:
        compile_rule = framework in RULE_COMPILED_BY_DEFAULT
    return compiler if compile_rule else None


class Options:
    """Methods of an adapter's options dataclass (subclasses are frozen dataclasses)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names."""
        return tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def taken_from(cls: type[OptionsType], keywords: dict[str, Any]) -> tuple[OptionsType, dict[str, Any]]:
        """The options among ``keywords``, and the other keywords (those of :func:`lmn_core.lmn`)."""
        names = cls.names()
        options = cls(**{key: value for key, value in keywords.items() if key in names})
        return options, {key: value for key, value in keywords.items() if key not in names}

    @classmethod
    def split_call(
        cls: type[OptionsType], arguments: Mapping[str, Any]
    ) -> tuple[OptionsType, dict[str, Any]]:
        """The options and the :data:`LMN_KEYWORDS` among a ``layer_lmn``'s named ``arguments``."""
        options = cls(**{name: arguments[name] for name in cls.names()})
        return options, {name: arguments[name] for name in LMN_KEYWORDS}

    @classmethod
    def with_keywords(
        cls: type[OptionsType], options: OptionsType | None, keywords: dict[str, Any], who: str
    ) -> OptionsType:
        """``options`` (or the defaults) with ``keywords`` over them; an unknown keyword is refused."""
        unknown = set(keywords) - set(cls.names())
        if unknown:
            raise TypeError(f"{who} got unknown options {sorted(unknown)}; it takes {list(cls.names())}")
        return dataclasses.replace(options or cls(), **keywords)  # type: ignore[type-var]
