"""common.enum_lookup: enum classes without Python 3.11's `EnumType.__getattr__`, and every
member, property-named ones included, found as before."""

import enum
import sys

import pytest

import common  # noqa: F401  (the package applies it)
from common.contracts import billing, credit_control, gateway, snapshots
from common.enum_lookup import drop_enum_getattr


def test_applied_by_importing_common() -> None:
    assert drop_enum_getattr()
    assert "__getattr__" not in vars(enum.EnumType)


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="3.12 has no such method")
def test_it_is_the_slot_that_changed() -> None:
    # CPython's tp_getattro of the metaclass is the generic one again, not the hook that
    # __getattr__ installs (the ~850 instructions per member access)
    assert type(enum.Enum).__getattribute__ is type.__getattribute__
    assert not hasattr(enum.EnumType, "__getattr__")


def test_every_contract_enum_member_is_found_by_name() -> None:
    enums = [v for m in (billing, credit_control, gateway, snapshots) for v in vars(m).values()
             if isinstance(v, type) and issubclass(v, enum.Enum) and v.__members__]
    assert len(enums) >= 5
    for e in enums:
        for name, member in e.__members__.items():
            assert getattr(e, name) is member


def test_property_named_members_missing_names_and_dunders() -> None:
    class Odd(enum.Enum):
        name = 1
        value = 2
        plain = 3

    assert Odd.name is Odd["name"] and Odd.value is Odd["value"]
    assert Odd.plain.name == "plain" and Odd.plain.value == 3
    with pytest.raises(AttributeError):
        Odd.missing  # noqa: B018
    with pytest.raises(AttributeError):
        Odd.__not_a_dunder__  # noqa: B018
    assert not hasattr(Odd, "missing")
