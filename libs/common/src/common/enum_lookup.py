"""Enum members looked up as plain class attributes, as Python 3.12 does.

Python 3.11's `EnumType` defines `__getattr__`, a fallback from when members were not in the
class's dict. They are since 3.11 (a member whose name is also a property, `name` or
`value`, is found by that `enum.property`), so the fallback answers nothing the dict does
not; but a metaclass with `__getattr__` sends every attribute access of every enum class,
`DecisionType.SUSPEND` included, through CPython's slow generic hook (~850 instructions
where a class attribute costs a few dozen; ~5 % of credit-control's instructions per balance
event, `make bench-instructions`). Python 3.12 removed the method (cpython gh-106762); this
removes it on 3.11, once per process, when the package is imported. What differs:
`SomeEnum.__getattr__("X")` is gone, as in 3.12; `SomeEnum.X` and a missing name
(`AttributeError`) behave as before.
"""

import enum
import sys


def drop_enum_getattr() -> bool:
    """Whether enum classes look members up without `EnumType.__getattr__` now."""
    if "__getattr__" in vars(enum.EnumType):
        if sys.version_info[:2] != (3, 11):  # checked on 3.11 only; 3.12 has none
            return False
        delattr(enum.EnumType, "__getattr__")
    return True
