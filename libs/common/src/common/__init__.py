"""Contracts and plumbing shared by every service (docs/architecture.md)."""

from common.enum_lookup import drop_enum_getattr

drop_enum_getattr()  # every process that imports common: common/enum_lookup.py says why
