"""The defaults of a hardened runtime, seen from inside real containers: the
default seccomp profile and its notify path through the engine, device rules,
the sealed exec.  The escapes themselves, each written as its attack, are in
test_attacks.py; docs/security.md maps each defence to its test."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pytest

import pynsbind
from pynsbind import Spec
from pynsbind.seccomp import Action, Notification, Response, SeccompProfile, SyscallRule

pytestmark = [pytest.mark.root, pytest.mark.vm]


def _notify(names: tuple[str, ...], default: Action = Action.ALLOW) -> SeccompProfile:
    rules = (SyscallRule(names=names, action=Action.NOTIFY),) if names else ()
    return SeccompProfile(default_action=default, syscalls=rules)


@pytest.mark.parametrize("init", [False, True])
def test_notify_is_answered_from_asyncio(rootfs: str, init: bool) -> None:
    """mkdir is notified: the handler refuses the first call with EACCES and
    says the second succeeded (without running it); the container sees exactly
    that, and other calls run unnotified."""
    seen: list[str] = []

    def handler(note: Notification) -> Response:
        seen.append(note.syscall)
        return Response.fail(errno.EACCES) if len(seen) == 1 else Response.ok(0)

    script = (
        "mkdir /tmp/a 2>/dev/null || echo refused; mkdir /tmp/b && echo made; "
        "test -d /tmp/b || echo not-there; touch /tmp/f && echo touched"
    )
    spec = Spec(
        args=["/bin/sh", "-c", script],
        rootfs=rootfs,
        init=init,
        seccomp=_notify(("mkdir", "mkdirat")),
    )

    async def main() -> tuple[int, bytes]:
        proc = pynsbind.spawn(spec, stdout=pynsbind.PIPE)
        assert proc.seccomp_listener is not None
        serving = asyncio.ensure_future(proc.serve_seccomp(handler))
        assert proc.stdout is not None
        with proc.stdout:
            out = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.read)
        rc = await proc.wait_async()
        await asyncio.wait_for(serving, 30)  # returns once the container is reaped
        return rc, out

    rc, out = asyncio.run(main())
    assert rc == 0
    assert out.split() == [b"refused", b"made", b"not-there", b"touched"]
    assert len(seen) == 2 and set(seen) <= {"mkdir", "mkdirat"}


def test_a_profile_that_notifies_everything_still_starts(rootfs: str) -> None:
    """Default action NOTIFY: every system call of the engine's after the filter
    is loaded (the sealed exec, the init) is notified before anyone serves; the
    engine takes the listener first and lets them through, then the handler
    answers the container's own."""
    calls: list[str] = []

    def handler(note: Notification) -> Response:
        calls.append(note.syscall)
        return Response.allow()

    spec = Spec(args=["/bin/true"], rootfs=rootfs, seccomp=_notify((), Action.NOTIFY))

    async def main() -> int:
        proc = pynsbind.spawn(spec)
        serving = asyncio.ensure_future(proc.serve_seccomp(handler))
        rc = await proc.wait_async()
        await asyncio.wait_for(serving, 30)
        return rc

    assert asyncio.run(main()) == 0
    assert "exit_group" in calls or "exit" in calls


def test_no_listener_without_notify_rules(rootfs: str) -> None:
    with pynsbind.spawn(Spec(args=["/bin/true"], rootfs=rootfs)) as proc:
        assert proc.seccomp_listener is None
        with pytest.raises(ValueError, match="no seccomp listener"):
            asyncio.run(proc.serve_seccomp(lambda note: Response.allow()))


def _status(rootfs: str, **fields: Any) -> dict[str, str]:
    res = pynsbind.run(
        ["/bin/cat", "/proc/self/status"], rootfs=rootfs, capture_output=True, **fields
    )
    assert res.returncode == 0, res.stderr
    assert isinstance(res.stdout, bytes)
    return dict(line.split(":\t", 1) for line in res.stdout.decode().splitlines() if ":\t" in line)


def test_the_default_profile_is_on_and_unconfined_turns_it_off(rootfs: str) -> None:
    assert _status(rootfs)["Seccomp"].strip() == "2"
    assert _status(rootfs, seccomp="unconfined")["Seccomp"].strip() == "0"
