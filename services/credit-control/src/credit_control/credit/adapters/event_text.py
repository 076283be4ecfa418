"""The sweep's events written in SQL, byte for byte as msgspec writes the same contract.

Every other producer encodes its contract structs with msgspec (`common.envelope.to_bytes`):
compact, fields in the struct's order, the envelope's `type` tag first, datetimes as
"2026-11-30T12:00:00Z" / "+08:00". The month-end sweep writes its decisions, commands and
state changes inside one set-based statement (sweep_sql.py), so it builds their text there;
these helpers make that text the same bytes, from the contracts' own field lists (msgspec's
type info), so one serialisation style holds for every event on every topic.

- `struct_text`: a struct from SQL values (one expression per field; `to_json(v)::text` for
  a value's JSON, as PostgreSQL escapes strings as msgspec does, `v::text` for integers and
  booleans; a field not given is its default, a constant). `to_json`, not `to_jsonb`: the
  same text without building a jsonb to print it (−2.4 % of a sweep chunk's server
  instructions). `to_json` looks the value's type up in the catalog on every call (~2,000
  instructions), so what needs no escaping skips it: ids the statement made itself (uuid
  text) go in quotes (`bare`), constants of the statement come as JSON parameters (`raw`).
- `object_text`: a JSON object from (key, SQL value, kind) members (a decision's inputs).
- `jsonb_struct_text`: a struct from a jsonb value (migration 0029's rewrite of the stored
  snapshots as msgspec writes them): each field taken by name in the struct's order, nested
  structs and lists of structs likewise; a key the struct does not have is left out, as
  decoding and encoding again would.
- `envelope_text`: the envelope around a payload text.
- `moment_json`: a datetime parameter as msgspec writes it.
- `enum_json`, `date_json`, `text_json`: a value's JSON without `to_json` where the value
  says what it will be (an enum's members as constants, a date's ISO text, a text that needs
  no escaping), given to the builders above as `raw`; `day_text`: a date's ISO text.

The strings are chains of `||` over constant pieces and each value's text: no jsonb object
is built and printed again, which keeps the sweep as fast as it was.
"""

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from msgspec import inspect as mi

from common.envelope import Envelope

_BIND_LIKE = re.compile(r":(?=\w)")
UNROLLED = 3


def moment_json(at: datetime) -> str:
    """'"2026-11-30T12:00:00Z"': a datetime as msgspec encodes it (JSON, quotes included)."""
    return msgspec.json.encode(at).decode()


def struct_text(cls: type[msgspec.Struct], values: Mapping[str, str],
                raw: Collection[str] = (), bare: Collection[str] = ()) -> str:
    """SQL giving the JSON text of `cls` from an SQL expression per field (by field name).
    Fields in `raw` are JSON text already (never NULL); fields in `bare` are text that needs
    no escaping and is never NULL (a uuid's text: ids the statement made itself), put in
    quotes; the others go through `to_json(v)::text` (NULL: null). A field left out is its
    default."""
    unknown = set(values) - {f.name for f in msgspec.structs.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    parts: list[str] = []
    plain = _plain_fields(cls)
    for n, f in enumerate(msgspec.structs.fields(cls)):
        parts.append(_quote(("{" if n == 0 else ",") + f'"{f.encode_name}":'))
        if f.name in values:
            v = values[f.name]
            kind = ("bare" if f.name in bare else "raw" if f.name in raw
                    else "plain" if f.name in plain else "json")
            parts += _value_parts(v, kind)
        elif f.required:
            raise ValueError(f"{cls.__name__}.{f.name} is required")
        else:
            parts.append(_quote(_default_json(f)))
    parts.append("'}'")
    return _join(parts)


def object_text(members: Sequence[tuple[str, str, str]]) -> str:
    """SQL giving a JSON object's text from (key, SQL expression, kind) in that order: kind
    `raw` is JSON text already (never NULL), `plain` an integer or boolean (its text is its
    JSON), `json` any other value (`to_json`); NULL is null. For a column that is not a
    contract's struct (a decision's inputs): no jsonb built and printed."""
    parts: list[str] = []
    for n, (key, v, kind) in enumerate(members):
        parts.append(_quote(("{" if n == 0 else ",") + msgspec.json.encode(key).decode() + ":"))
        parts += _value_parts(v, kind)
    parts.append("'}'" if members else "'{}'")
    return _join(parts)


def _value_parts(v: str, kind: str) -> list[str]:
    """The SQL pieces of one value's JSON text: `raw` JSON text already, `bare` text that
    needs no escaping (put in quotes, which merge with the neighbouring literals), `plain` an
    integer or boolean, `json` anything else; NULL is null (not for `raw` and `bare`)."""
    if kind == "raw":
        return [v]
    if kind == "bare":
        return ["'\"'", v, "'\"'"]
    return [f"COALESCE(({v})::text, 'null')" if kind == "plain"
            else f"COALESCE(to_json({v})::text, 'null')"]


def enum_json(expr: str, members: Iterable[str]) -> str:
    """SQL giving the JSON text of `expr`, a text whose values are mostly `members` (an
    enum's): each member's JSON is a constant of the statement, and anything else (NULL, a
    value an older version wrote) goes through `to_json` as before. Raw JSON, never NULL. A
    `to_json` costs ~2,000 instructions (its catalog look-ups); a member found here a few
    text comparisons."""
    whens = " ".join(f"WHEN {_quote(m)} THEN {_quote(msgspec.json.encode(m).decode())}"
                     for m in members)
    return f"(CASE {expr} {whens} ELSE COALESCE(to_json({expr})::text, 'null') END)"


def text_json(expr: str) -> str:
    """SQL giving the JSON text of `expr`, a text that needs no escaping (digits and dashes:
    a date's text): in quotes, NULL null. Raw JSON, never NULL."""
    return f"COALESCE('\"' || ({expr}) || '\"', 'null')"


def day_text(expr: str) -> str:
    """SQL giving the date `expr` as text, "2026-11-30": its output under DateStyle ISO,
    which `common.db.make_engine` sets on every connection (ids, reasons and events are made
    of it; to_char and to_json cost ~2,000 instructions more a call)."""
    return f"({expr})::text"


def date_json(expr: str) -> str:
    """SQL giving the JSON text of the date `expr` ("2026-11-30"; NULL null), as msgspec
    writes a date (`day_text`). Raw JSON, never NULL."""
    return text_json(day_text(expr))


def _plain_fields(cls: type[msgspec.Struct]) -> set[str]:
    """Integer and boolean fields (or None): PostgreSQL's text of such a value is its JSON, as
    msgspec writes it, without `to_json` (which looks the value's type up in the catalog per
    call: ~2,000 instructions)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    found = set()
    for f in info.fields:
        t = _unwrap(f.type)
        kinds = [_unwrap(x) for x in t.types] if isinstance(t, mi.UnionType) else [t]
        if all(isinstance(k, mi.IntType | mi.BoolType | mi.NoneType) for k in kinds):
            found.add(f.name)
    return found


def jsonb_struct_text(expr: str, cls: type[msgspec.Struct]) -> str:
    """SQL giving the JSON text of `cls` from the jsonb value `expr` (a stored struct)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return _struct_from_jsonb(expr, info)


def envelope_text(event_type_json: str, event_id: str, source_json: str,
                  occurred_at_json: str, correlation_json: str, schema_version: str, key: str,
                  payload_text: str) -> str:
    """SQL giving an envelope's JSON text: the `type` tag first, then the envelope's fields
    in its order (common.envelope.Envelope), the payload text last. `*_json` arguments are
    JSON text already; `event_id` a uuid (its text needs no escaping); the others are SQL
    values."""
    given = {"event_id": _value_parts(event_id, "bare"), "source": [source_json],
             "occurred_at": [occurred_at_json], "correlation_id": [correlation_json],
             "schema_version": [f"({schema_version})::text"],
             "key": [f"to_json({key})::text"], "payload": [payload_text]}
    parts = ["'{\"type\":'", event_type_json]
    for f in msgspec.structs.fields(Envelope):
        parts += [_quote(f',"{f.encode_name}":'), *given[f.name]]
    parts.append("'}'")
    return _join(parts)


def _at(root: str, path: tuple[str, ...]) -> str:
    """The jsonb value at `path` under `root`: one `#>` walking the containers in place (a
    chain of `->` copies every object on the way)."""
    return f"({root} #> '{{{','.join(path)}}}')" if path else root


def _struct_from_jsonb(root: str, info: mi.StructType, path: tuple[str, ...] = ()) -> str:
    parts: list[str] = []
    for n, f in enumerate(info.fields):
        parts.append(_quote(("{" if n == 0 else ",") + f'"{f.encode_name}":'))
        default = None if f.required else _default_json(f)
        parts.append(_value_from_jsonb(root, (*path, f.encode_name), f.type, default))
    parts.append("'}'")
    return _join(parts)


def _value_from_jsonb(root: str, path: tuple[str, ...], t: Any, default: str | None) -> str:
    t, expr = _unwrap(t), _at(root, path)
    if isinstance(t, mi.UnionType):
        inner = [_unwrap(x) for x in t.types if not isinstance(_unwrap(x), mi.NoneType)]
        if len(inner) == 1 and isinstance(inner[0], mi.StructType | mi.ListType | mi.VarTupleType):
            shown = _value_from_jsonb(root, path, inner[0], None)
            return (f"(CASE WHEN jsonb_typeof({expr}) IN ('object', 'array') THEN {shown} "
                    f"ELSE {_quote(default or 'null')} END)")
        t = inner[0] if len(inner) == 1 else t
    if isinstance(t, mi.StructType):
        return f"COALESCE({_struct_from_jsonb(root, t, path)}, 'null')"
    if isinstance(t, mi.ListType | mi.VarTupleType):
        return _array_from_jsonb(root, path, t.item_type, default or "[]")
    # A scalar (string, number, boolean, enum, date as text): jsonb prints it as msgspec does.
    return f"COALESCE(({expr})::text, {_quote(default or 'null')})"


def _array_from_jsonb(root: str, path: tuple[str, ...], item_type: Any, default: str) -> str:
    """An array's items in their order; a missing one is its default ([]). Arrays of up to
    UNROLLED items (a customer's contacts: one or two) are spelt out item by item, cheaper
    than a subquery over `jsonb_array_elements` per row; longer ones take the subquery."""
    expr = _at(root, path)
    cases = ["WHEN 0 THEN '[]'"]
    for n in range(1, UNROLLED + 1):
        items = [_value_from_jsonb(root, (*path, str(i)), item_type, "null") for i in range(n)]
        cases.append(f"WHEN {n} THEN " + _join(
            ["'['", *[p for i, v in enumerate(items) for p in ([v] if i == 0 else ["','", v])],
             "']'"]))
    each = _value_from_jsonb("x.e", (), item_type, "null")
    longer = (f"COALESCE((SELECT '[' || string_agg({each}, ',' ORDER BY x.n) || ']' "
              f"FROM jsonb_array_elements({expr}) WITH ORDINALITY AS x(e, n)), '[]')")
    return (f"(CASE WHEN jsonb_typeof({expr}) = 'array' THEN CASE jsonb_array_length({expr}) "
            f"{' '.join(cases)} ELSE {longer} END ELSE {_quote(default)} END)")


def _unwrap(t: Any) -> Any:
    return t.type if isinstance(t, mi.Metadata) else t


def _default_json(f: Any) -> str:
    value = f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default
    return msgspec.json.encode(value).decode()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _join(parts: list[str]) -> str:
    """Adjacent constants merged into one literal: fewer concatenations per row."""
    merged: list[str] = []
    for p in parts:
        if merged and _is_literal(p) and _is_literal(merged[-1]):
            merged[-1] = merged[-1][:-1] + p[1:]
        else:
            merged.append(p)
    # For sqlalchemy's `text()`: a colon before a word in a literal (`"x":null`) is escaped,
    # or it would be read as a bind parameter.
    merged = [_BIND_LIKE.sub(r"\\:", p) if _is_literal(p) else p for p in merged]
    # A chain of ||, not concat(): concat() runs every argument through its type's output
    # function (a copy, a strlen, and the constants as `unknown`), which costs more than the
    # chain's copies of the text so far (−1.2 % of a sweep chunk's server instructions). No
    # part is NULL (values are COALESCEd; raw ones come from NOT NULL columns and
    # parameters); one that were would make the text NULL, where concat() left a hole.
    return "(" + " || ".join(merged) + ")"


def _is_literal(p: str) -> bool:
    return len(p) >= 2 and p[0] == "'" and p[-1] == "'" and "'" not in p[1:-1].replace("''", "")
