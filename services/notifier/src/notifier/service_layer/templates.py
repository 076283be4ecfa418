"""The templates: list, change (validated, versioned), preview against a decision, a state
change or what a deduction collected."""

from typing import Any

from common.errors import NotFound, Unprocessable

from ..adapters import repository as repo
from ..domain.delivery import phone_problem
from ..domain.notices import NoticeEvent, notices_for, notices_for_template
from ..domain.templates import (
    PLACEHOLDERS,
    SPECS,
    TemplateName,
    render,
    segments,
    template_problems,
)
from .context import NotifierContext


class InvalidTemplate(Unprocessable):
    code = "invalid_template"


def _describe(name: TemplateName, version: int, text: str) -> dict[str, Any]:
    spec = SPECS[name]
    return {"name": name.value, "title": spec.title, "trigger": spec.trigger,
            "role": spec.role.value, "version": version, "text": text,
            "default_text": spec.default_text, "from_seed": spec.from_seed,
            "date_source": spec.date_source.value, "amount_source": spec.amount_source.value}


async def list_templates(ctx: NotifierContext) -> list[dict[str, Any]]:
    async with ctx.engine.connect() as conn:
        current = await repo.current_templates(conn)
    return [_describe(name, *current[name]) for name in TemplateName]


def placeholders() -> dict[str, str]:
    return dict(PLACEHOLDERS)


def _parse_name(name: str) -> TemplateName | None:
    try:
        return TemplateName(name)
    except ValueError:
        return None


async def put_templates(
    ctx: NotifierContext, items: list[tuple[str, str]], changed_by: str | None,
) -> list[dict[str, Any]]:
    """All or nothing: one bad template refuses the whole request and changes nothing."""
    problems: dict[str, list[str]] = {}
    changes: dict[TemplateName, str] = {}
    for name, text in items:
        parsed = _parse_name(name)
        found = template_problems(text, parsed)
        if parsed is None:
            found.insert(0, "no such template; known: " + ", ".join(TemplateName))
        elif parsed in changes:
            found.insert(0, "given twice in one request")
        if found:
            problems[name] = found
        elif parsed is not None:
            changes[parsed] = text
    if problems:
        raise InvalidTemplate("templates refused; nothing was changed", problems=problems)
    async with ctx.engine.begin() as conn:
        await repo.add_template_versions(conn, changes, changed_by)
    return await list_templates(ctx)


async def template_versions(ctx: NotifierContext, name: str) -> list[dict[str, Any]]:
    parsed = _parse_name(name)
    if parsed is None:
        raise NotFound(f"no template {name!r}", known=list(TemplateName))
    async with ctx.engine.connect() as conn:
        stored = await repo.template_versions(conn, parsed)
    first = {"name": parsed.value, "version": 1, "text": SPECS[parsed].default_text,
             "changed_by": "default", "created_at": None}
    return [first, *stored]


async def preview(
    ctx: NotifierContext, event: NoticeEvent, template: str | None, draft: str | None,
) -> list[dict[str, Any]]:
    """The messages an event makes, rendered; with `template`, that template's messages for
    the event; with `draft`, that text instead of the stored one (validated first)."""
    parsed = _parse_name(template) if template is not None else None
    if template is not None and parsed is None:
        raise InvalidTemplate(f"no template {template!r}", known=list(TemplateName))
    if draft is not None:
        if parsed is None:
            raise InvalidTemplate("a draft text needs the template it is for")
        found = template_problems(draft, parsed)
        if found:
            raise InvalidTemplate("the draft cannot be used", problems={parsed.value: found})
    async with ctx.engine.connect() as conn:
        current = await repo.current_templates(conn)
    notices = notices_for_template(event, parsed) if parsed else notices_for(event)
    out = []
    for n in notices:
        version, text = current[n.template]
        if draft is not None:
            version, text = 0, draft  # version 0: not stored
        rendered = render(text, n.fields)
        out.append({"template": n.template.value, "template_version": version,
                    "role": n.role.value, "recipient_name": n.recipient_name,
                    "recipient": n.recipient_phone, "text": rendered,
                    "segments": segments(rendered), "undeliverable": phone_problem(
                        n.recipient_phone)})
    return out
