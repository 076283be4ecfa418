"""`creditctl mas-send`: send as an enterprise's MAS server does, over CMPP 2.0 to the
industry gateway — to check that an enterprise can send (or is refused while suspended), and
as a small load tool (`--count`, `--window`). Not an HTTP client like the other commands: it
logs in with the enterprise's Source_Addr and shared secret (common.cmpp.client)."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console

from common.cmpp.client import CmppClient, ConnectRefused
from common.cmpp.codec import CmppError, ConnectStatus, SubmitResult

from .client import EXIT_AUTH, EXIT_REJECTED, EXIT_UNAVAILABLE
from .output import Output, OutputOption, emit

out = Console(soft_wrap=True)
err = Console(stderr=True)


@dataclass
class Tally:
    results: Counter[int] = field(default_factory=Counter)
    msg_ids: list[int] = field(default_factory=list)
    reports: int = 0
    elapsed_s: float = 0.0

    def view(self) -> dict[str, Any]:
        submits = sum(self.results.values())
        return {
            "submits": submits, "accepted": self.results.get(0, 0),
            "refused": {_name(r): n for r, n in sorted(self.results.items()) if r},
            "reports": self.reports, "elapsed_s": round(self.elapsed_s, 3),
            "submits_per_s": round(submits / self.elapsed_s, 1) if self.elapsed_s else None,
            "first_msg_id": self.msg_ids[0] if self.msg_ids else None,
        }


def _name(result: int) -> str:
    try:
        return f"{result} {SubmitResult(result).name.lower()}"
    except ValueError:
        return str(result)


async def send(host: str, port: int, source_addr: str, secret: str, to: list[str],
               text: str, *, count: int, window: int, src_id: str, report: bool,
               timeout: float) -> Tally:
    """Log in, submit `count` times (up to `window` unacknowledged), wait for the status
    reports if asked, terminate."""
    client = await CmppClient.connect(host, port, source_addr, secret, window=window,
                                      timeout=timeout)
    tally = Tally()
    try:
        started = time.perf_counter()

        async def one() -> None:
            for resp in await client.submit(to, text, src_id=src_id, msg_src=source_addr,
                                            registered_delivery=1 if report else 0):
                tally.results[resp.result] += 1
                if resp.result == 0:
                    tally.msg_ids.append(resp.msg_id)

        await asyncio.gather(*(one() for _ in range(count)))
        tally.elapsed_s = time.perf_counter() - started
        if report:
            expected = len(tally.msg_ids) * len(to)
            while tally.reports < expected:
                await asyncio.wait_for(client.reports.get(), timeout)
                tally.reports += 1
    finally:
        await client.terminate()
    return tally


def mas_send(
    source_addr: Annotated[str, typer.Option(
        "--source-addr", envvar="CREDITCTL_CMPP_SOURCE_ADDR",
        help="the enterprise's Source_Addr (企业代码, ≤ 6 characters)")],
    secret: Annotated[str, typer.Option(envvar="CREDITCTL_CMPP_SECRET",
                                        help="the enterprise's shared secret")],
    to: Annotated[list[str], typer.Option("--to", help="a destination number (repeatable)")],
    text: Annotated[str, typer.Option(help="the message (UCS-2; > 70 characters: segments)")],
    host: Annotated[str, typer.Option(envvar="CREDITCTL_CMPP_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="CREDITCTL_CMPP_PORT",
                                      help="the gateway's CMPP port")] = 7890,
    src_id: Annotated[str, typer.Option(help="Src_Id, the SP's access number")] = "",
    count: Annotated[int, typer.Option(min=1, max=1_000_000,
                                       help="send the message this many times (load)")] = 1,
    window: Annotated[int, typer.Option(min=1, max=1024,
                                        help="unacknowledged submits at most")] = 16,
    report: Annotated[bool, typer.Option(help="ask for and wait for status reports")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per response")] = 10.0,
    output: OutputOption = Output.table,
) -> None:
    """Send over CMPP 2.0 as a MAS server: exit 0 if every submit was accepted, 1 if the
    gateway refused one (9 = the product is blocked), 4 if the login was refused, 3 if the
    gateway could not be reached."""
    if len(to) > 100:
        raise typer.BadParameter("at most 100 --to numbers (DestUsr_tl)")
    try:
        tally = asyncio.run(send(host, port, source_addr, secret, to, text, count=count,
                                 window=window, src_id=src_id, report=report,
                                 timeout=timeout))
    except ConnectRefused as exc:
        err.print(f"[red]error:[/red] login refused: status {exc.status} "
                  f"({_status_name(exc.status)})", highlight=False)
        raise typer.Exit(EXIT_AUTH) from exc
    except (OSError, TimeoutError, CmppError) as exc:
        err.print(f"[red]error:[/red] CMPP gateway {host}:{port}: {exc or type(exc).__name__}",
                  highlight=False)
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    view = tally.view()
    emit(output, view, lambda yuan: [(
        "CMPP submits", ["submits", "accepted", "refused", "reports", "elapsed_s",
                         "submits_per_s"],
        [tuple(str(v) for v in (
            view["submits"], view["accepted"],
            ", ".join(f"{k}: {n}" for k, n in view["refused"].items()) or "-",
            view["reports"], view["elapsed_s"], view["submits_per_s"]))])], console=out)
    if view["refused"]:
        raise typer.Exit(EXIT_REJECTED)


def _status_name(status: int) -> str:
    try:
        return ConnectStatus(status).name.lower()
    except ValueError:
        return "other"
