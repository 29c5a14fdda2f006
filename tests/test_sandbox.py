"""pynsbind-run sandbox and pynsbind.sandbox(): real sandboxes, run as root and
as an unprivileged user the tests create, observed from the inside (what the
command prints) and from the host (files, processes, cgroups)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import pynsbind
from tests.helpers import pynsbind_cgroups, wait_for

pytestmark = pytest.mark.root

PY = sys.executable
#: a Python the sandbox can run (its user may be nobody): the system's
SANDBOX_PY = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin") or "python3"


class Ran:
    """What one run of the command line did."""

    def __init__(self, rc: int, out: str, err: str, pid: int) -> None:
        self.rc, self.out, self.err, self.pid = rc, out, err, pid

    def __repr__(self) -> str:
        return f"<rc={self.rc} out={self.out[-600:]!r} err={self.err[-600:]!r}>"


def _argv(args: tuple[str, ...], user: Any) -> list[str]:
    argv = [PY, "-m", "pynsbind", "sandbox", *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", *argv]
    return argv


def sbx(*args: str, user: Any = None, input: str | None = None, cwd: str | None = None) -> Ran:
    """pynsbind-run sandbox ARGS, as a user runs it; checks that it left no
    cgroup behind."""
    proc = subprocess.Popen(
        _argv(args, user),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or (user.home if user is not None else None),
        env={**os.environ, "HOME": user.home} if user is not None else None,
    )
    try:
        out, err = proc.communicate(input, timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"pynsbind-run sandbox {args} hung") from None
    assert pynsbind_cgroups(pid=proc.pid) == set(), "the sandbox left a cgroup behind"
    return Ran(proc.returncode, out, err, proc.pid)


def one_line_error(res: Ran) -> str:
    """The sandbox's own error: one line on stderr, no traceback."""
    assert "Traceback" not in res.err, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res
    assert lines[0].startswith("pynsbind-run sandbox: "), res
    return lines[0]


@pytest.fixture
def host_dir() -> Any:
    """A directory of the host's, outside what the sandbox makes private (/tmp,
    /run, /var/tmp), that the sandbox sees as it is."""
    base = "/srv" if os.path.isdir("/srv") else "/opt"
    d = Path(tempfile.mkdtemp(prefix="pynsbind-sbx-", dir=base))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


ISOLATION = (
    "hostname; echo pid $$; id -u; "
    "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; "
    "touch /etc/pynsbind-sbx 2>&1 | grep -o 'Read-only file system'; "
    "echo tmp > /tmp/pynsbind-sbx-tmp && cat /tmp/pynsbind-sbx-tmp"
)


@pytest.mark.parametrize("who", ["root", "user"])
def test_default_sandbox_is_isolated_and_read_only(who: str, plain_user: Any) -> None:
    res = sbx("--", "sh", "-c", ISOLATION, user=plain_user if who == "user" else None)
    assert res.rc == 0, res
    assert res.out.splitlines() == [
        "sandbox",
        "pid 2",  # the init is PID 1
        "0",
        "lo",  # no network but loopback
        "Read-only file system",
        "tmp",
    ], res
    assert not os.path.exists("/etc/pynsbind-sbx")
    assert not os.path.exists("/tmp/pynsbind-sbx-tmp"), "the sandbox's /tmp is the host's"


def test_network_host_shares_the_hosts_interfaces() -> None:
    res = sbx("--net", "host", "--", "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1")
    assert res.rc == 0, res
    assert sorted(i.strip() for i in res.out.split()) == sorted(os.listdir("/sys/class/net"))


def test_writable_overlay_changes_vanish(host_dir: Path) -> None:
    """--writable: the sandbox writes, renames and deletes in its root; the host
    is as it was."""
    (host_dir / "keep").write_text("host\n")
    name = f"/etc/pynsbind-sbx-{uuid.uuid4().hex[:8]}"
    hostname_before = Path("/etc/hostname").read_bytes()
    res = sbx(
        "--writable",
        "--",
        "sh",
        "-c",
        f"echo new > {name} && cat {name} && rm /etc/hostname && echo gone && "
        f"echo changed > {host_dir}/keep && cat {host_dir}/keep && mkdir -p /usr/pynsbind-sbx",
    )
    assert res.rc == 0, res
    assert res.out.split() == ["new", "gone", "changed"], res
    assert not os.path.exists(name)
    assert Path("/etc/hostname").read_bytes() == hostname_before
    assert (host_dir / "keep").read_text() == "host\n"
    assert not os.path.exists("/usr/pynsbind-sbx")


def test_keep_changes_keeps_the_upper_layer(host_dir: Path) -> None:
    keep = host_dir / "changes"
    res = sbx("--keep-changes", str(keep), "--", "sh", "-c", "echo kept > /etc/pynsbind-kept")
    assert res.rc == 0, res
    assert not os.path.exists("/etc/pynsbind-kept")
    kept = keep / "upper" / "etc" / "pynsbind-kept"
    assert kept.read_text() == "kept\n"
    assert kept.stat().st_uid == 0, "the kept file is not the caller's (idmapped upper layer)"
    # the next sandbox over the same changes sees them
    res = sbx("--keep-changes", str(keep), "--", "cat", "/etc/pynsbind-kept")
    assert res.out == "kept\n", res


def test_writable_needs_root_over_the_hosts_root(plain_user: Any) -> None:
    res = sbx("--writable", "--", "true", user=plain_user)
    assert res.rc == 125
    assert "needs root" in one_line_error(res)


def test_rootless_rootfs_writable(plain_user: Any, rootfs: str) -> None:
    """A plain user's --rootfs DIR (its own files) with --writable and
    --keep-changes: changes in the overlay, DIR untouched."""
    top = Path(plain_user.home) / f"r{uuid.uuid4().hex[:6]}"
    shutil.copytree(rootfs, top / "root", symlinks=True)
    for p in (top, *top.rglob("*")):
        os.lchown(p, plain_user.uid, plain_user.gid)
    root = top / "root"
    res = sbx(
        "--rootfs",
        str(root),
        "--writable",
        "--",
        "sh",
        "-c",
        "echo x > /etc/new && cat /etc/new",
        user=plain_user,
    )
    assert res.rc == 0 and res.out == "x\n", res
    assert not (root / "etc" / "new").exists()
    keep = top / "keep"
    res = sbx(
        "--rootfs",
        str(root),
        "--keep-changes",
        str(keep),
        "--",
        "sh",
        "-c",
        "echo y > /etc/k",
        user=plain_user,
    )
    assert res.rc == 0, res
    assert (keep / "upper" / "etc" / "k").read_text() == "y\n"
    assert (keep / "upper" / "etc" / "k").stat().st_uid == plain_user.uid


def test_volumes_as_root_are_idmapped(host_dir: Path) -> None:
    """Run by root, the sandbox is nobody on the host, but a volume is read and
    written as root: a root-only file is readable, a new file is root's."""
    secret = host_dir / "secret"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)
    os.chmod(host_dir, 0o700)
    res = sbx("-v", f"{host_dir}:/mnt", "--", "sh", "-c", "cat /mnt/secret; echo out > /mnt/new")
    assert res.rc == 0 and res.out == "s3cret\n", res
    st = (host_dir / "new").stat()
    assert (st.st_uid, st.st_gid) == (0, 0), "written as the caller"
    # outside the volume, the host's root-only files stay out of reach
    res = sbx("--", "cat", str(secret))
    assert res.rc != 0 and "s3cret" not in res.out, res
    # read-only
    res = sbx("-v", f"{host_dir}:/mnt:ro", "--", "sh", "-c", "echo x > /mnt/ro")
    assert res.rc != 0 and "Read-only file system" in res.err, res
    assert not (host_dir / "ro").exists()


def test_volumes_as_a_plain_user_are_its_own(plain_user: Any) -> None:
    d = Path(plain_user.home) / f"vol{uuid.uuid4().hex[:6]}"
    d.mkdir()
    os.chown(d, plain_user.uid, plain_user.gid)
    res = sbx("-v", f"{d}:/mnt", "--", "sh", "-c", "id -u; echo hi > /mnt/f", user=plain_user)
    assert res.rc == 0 and res.out == "0\n", res
    assert (d / "f").stat().st_uid == plain_user.uid


def test_bind_is_writable_and_works_under_tmp() -> None:
    """bubblewrap's --bind is writable without any other option, and a source
    under /tmp (where the sandbox's own /tmp goes) is the host's directory."""
    d = Path(tempfile.mkdtemp(prefix="pynsbind-sbx-"))
    try:
        (d / "in").write_text("from the host\n")
        os.chmod(d, 0o777)
        res = sbx("--bind", f"{d}:/tmp/v", "--", "sh", "-c", "cat /tmp/v/in; echo w > /tmp/v/out")
        assert res.rc == 0 and res.out == "from the host\n", res
        assert (d / "out").read_text() == "w\n"
        res = sbx("--ro-bind", f"{d}:/tmp/v", "--", "sh", "-c", "echo w > /tmp/v/no")
        assert res.rc != 0 and not (d / "no").exists(), res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_mount_and_tmpfs_options(host_dir: Path) -> None:
    (host_dir / "f").write_text("m\n")
    res = sbx(
        "--mount",
        f"type=bind,src={host_dir},dst=/mnt,readonly",
        "--mount",
        "type=tmpfs,dst=/tmp/t,tmpfs-size=1m,tmpfs-mode=0700",
        "--tmpfs",
        "/var/tmp/s:size=2m,mode=1777",
        "--",
        "sh",
        "-c",
        "cat /mnt/f; touch /mnt/x 2>/dev/null || echo ro; "
        "stat -c %a /tmp/t /var/tmp/s; df -k /tmp/t /var/tmp/s | tail -2 | awk '{print $2}'",
    )
    assert res.rc == 0, res
    assert res.out.split() == ["m", "ro", "700", "1777", "1024", "2048"], res


def test_memory_limit_and_oom_in_the_json_status(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    res = sbx(
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        "--json-status",
        str(status),
        "--",
        SANDBOX_PY,
        "-c",
        "b = bytearray(256 << 20)",
    )
    got = json.loads(status.read_text())
    assert res.rc == 137, res
    assert got["signal"] == 9 and got["signal_name"] == "SIGKILL" and got["exit_code"] is None
    assert got["oom_killed"] is True, got
    assert got["returncode"] == 137 and got["timed_out"] is False
    assert 0 < got["peak_memory"] <= 40 << 20, got
    for key in ("wall_time", "cpu_time"):
        assert isinstance(got[key], float) and got[key] >= 0, got


def test_json_status_of_a_clean_exit() -> None:
    res = sbx("--json-status", "-", "--", "sh", "-c", "echo out; exit 3")
    assert res.rc == 3, res
    text = res.out[len("out\n") :]
    got = json.loads(text)
    assert res.out.startswith("out\n")
    assert got["exit_code"] == 3 and got["signal"] is None and got["oom_killed"] is False


def test_pids_limit_holds() -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        continue\n"
        "    if pid == 0:\n"
        "        time.sleep(3); os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    res = sbx("--pids-limit", "10", "--", SANDBOX_PY, "-c", code)
    assert res.rc == 0, res
    made = int(res.out)
    assert 0 < made < 10, f"{made} processes under a limit of 10 (init and python count too)"


def test_cpus_limit_is_the_containers_cpu_quota() -> None:
    """--cpus 0.25 is a CFS quota of 25 ms per 100 ms on the sandbox's cgroup:
    read from the host while it runs."""
    proc = subprocess.Popen(
        _argv(("--cpus", "0.25", "--", "sleep", "30"), None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sleeper: list[int] = []

        def find() -> bool:
            for p in os.listdir("/proc"):
                if p.isdigit():
                    try:
                        comm = Path(f"/proc/{p}/comm").read_text().strip()
                        ppid = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]
                        gpp = Path(f"/proc/{ppid}/stat").read_text().rsplit(")", 1)[1].split()[1]
                    except OSError:
                        continue
                    if comm == "sleep" and int(gpp) == proc.pid:
                        sleeper.append(int(p))
                        return True
            return False

        assert wait_for(find), "the sandbox's sleep never appeared"
        cg = dict(
            line.split(":", 2)[1:]
            for line in Path(f"/proc/{sleeper[0]}/cgroup").read_text().splitlines()
        )
        quota = period = None
        if "cpu" in cg and os.path.isdir("/sys/fs/cgroup/cpu"):
            d = "/sys/fs/cgroup/cpu" + cg["cpu"]
            quota = int(Path(d, "cpu.cfs_quota_us").read_text())
            period = int(Path(d, "cpu.cfs_period_us").read_text())
        else:
            d = "/sys/fs/cgroup" + cg[""]
            quota, period = (int(x) for x in Path(d, "cpu.max").read_text().split())
        assert (quota, period) == (25000, 100000)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError("pynsbind-run did not end at SIGTERM") from None
    assert pynsbind_cgroups(pid=proc.pid) == set()


def test_ulimit() -> None:
    res = sbx("--ulimit", "nofile=64:128", "--", "sh", "-c", "ulimit -n; ulimit -Hn")
    assert res.rc == 0 and res.out.split() == ["64", "128"], res


def _status_field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {out!r}")


def test_capabilities_add_and_drop() -> None:
    res = sbx("--cap-drop", "ALL", "--", "cat", "/proc/self/status")
    assert int(_status_field(res.out, "CapEff"), 16) == 0, res
    assert int(_status_field(res.out, "CapBnd"), 16) == 0, res
    res = sbx("--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--", "cat", "/proc/self/status")
    assert int(_status_field(res.out, "CapEff"), 16) == 1 << 12, res
    res = sbx("--cap-drop", "chown", "--", "cat", "/proc/self/status")
    eff = int(_status_field(res.out, "CapEff"), 16)
    assert not eff & 1 and eff & (1 << 5), res  # no CHOWN, still KILL


def test_seccomp_options(tmp_path: Path) -> None:
    res = sbx("--", "cat", "/proc/self/status")
    assert _status_field(res.out, "Seccomp") == "2" and _status_field(res.out, "NoNewPrivs") == "1"
    res = sbx("--security-opt", "seccomp=unconfined", "--", "cat", "/proc/self/status")
    assert _status_field(res.out, "Seccomp") == "0", res
    res = sbx("--security-opt", "no-new-privileges=false", "--", "cat", "/proc/self/status")
    assert _status_field(res.out, "NoNewPrivs") == "0", res
    # a profile of the caller's: OCI's form, and docker's (archMap, includes)
    oci = tmp_path / "oci.json"
    oci.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
                ],
            }
        )
    )
    docker = tmp_path / "docker.json"
    docker.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [
                    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}
                ],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {
                        "names": ["rmdir"],
                        "action": "SCMP_ACT_ERRNO",
                        "includes": {"caps": ["CAP_SYS_BOOT"]},
                    },
                ],
            }
        )
    )
    res = sbx("--security-opt", f"seccomp={oci}", "--", "mkdir", "/tmp/x")
    assert res.rc != 0 and "Permission denied" in res.err, res
    res = sbx("--security-opt", f"seccomp={docker}", "--", "sh", "-c", "mkdir /tmp/x; rmdir /tmp/y")
    assert "mkdir: cannot create directory '/tmp/x': Operation not permitted" in res.err, res
    # the rule for CAP_SYS_BOOT does not apply: rmdir fails as rmdir does, not with EPERM
    assert "rmdir: failed to remove '/tmp/y': No such file or directory" in res.err, res


def test_env_workdir_user_hostname(tmp_path: Path) -> None:
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=f\n\nPASSED_FROM_FILE\n")
    env = {**os.environ, "PASSED": "yes", "PASSED_FROM_FILE": "p"}
    res = subprocess.run(
        _argv(
            (
                "-e",
                "A=1",
                "-e",
                "PASSED",
                "-e",
                "UNSET_HERE",
                "--env-file",
                str(envfile),
                "-w",
                "/tmp",
                "-u",
                "1000:1001",
                "--hostname",
                "box",
                "--",
                "sh",
                "-c",
                'echo $A $PASSED $FROM_FILE $PASSED_FROM_FILE "${UNSET_HERE-unset}"; pwd; id -u; id -g; hostname',
            ),
            None,
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res
    assert res.stdout.splitlines() == ["1 yes f p unset", "/tmp", "1000", "1001", "box"]
    res2 = sbx("-u", "nobody", "--", "id", "-u")
    assert res2.out.strip() == "65534", res2


def test_exit_statuses() -> None:
    assert sbx("--", "sh", "-c", "exit 7").rc == 7
    assert sbx("--", "sh", "-c", "kill -TERM $$").rc == 128 + signal.SIGTERM
    missing = sbx("--", "no-such-command-anywhere")
    assert missing.rc == 127
    assert "executable file not found" in one_line_error(missing)
    plain = Path(
        tempfile.mkdtemp(prefix="pynsbind-sbx-", dir="/srv" if os.path.isdir("/srv") else "/opt")
    )
    try:
        os.chmod(plain, 0o755)
        (plain / "data").write_text("not a program\n")
        cannot = sbx("--", str(plain / "data"))
    finally:
        shutil.rmtree(plain)
    assert cannot.rc == 126 and "permission denied" in one_line_error(cannot)
    failed = sbx("-w", "/no/such/dir", "--", "true")
    assert failed.rc == 125 and "change directory to /no/such/dir" in one_line_error(failed)
    assert sbx("--init=false", "--", "sh", "-c", "echo $$").out == "1\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--volme", "x"), "unknown option --volme (did you mean --volume?)"),
        (("-v", "/no/such/source:/mnt"), "the source /no/such/source does not exist"),
        (("-v", "/srv:/no/such/target"), "the target /no/such/target does not exist"),
        (("-v", "myvolume:/mnt"), "named volume"),
        (("--net", "bridge"), "none (loopback only) or host"),
        (("--cap-add", "SYS_ADMN"), "unknown capability 'SYS_ADMN' (did you mean SYS_ADMIN?)"),
        (("--security-opt", "apparmor=x"), "seccomp=PROFILE.json"),
        (("--memory-swap", "1g"), "--memory-swap: needs --memory"),
        (("--read-only", "--writable"), "pick one"),
        (("--cpus", "999"), "out of range"),
        (("--ulimit", "nofile"), "NAME=SOFT[:HARD]"),
        (("--hostname", "bad name"), "--hostname: 'bad name' is not a valid host name"),
        (("--timeout", "soon"), "--timeout takes seconds"),
        ((), "give a command to run"),
    ],
)
def test_errors_are_one_line(args: tuple[str, ...], says: str) -> None:
    res = sbx(*args, *(("--", "true") if args else ()))
    assert res.rc == 125, res
    assert says in one_line_error(res), res


def test_errors_of_a_plain_user(plain_user: Any) -> None:
    res = sbx("-m", "64m", "--", "true", user=plain_user)
    if os.path.exists("/sys/fs/cgroup/cgroup.subtree_control") and res.rc == 0:
        pytest.skip("this host delegates cgroups to plain users")
    assert res.rc == 125
    assert "--memory: this host cannot enforce it" in one_line_error(res)
    res = sbx("--keep-changes", plain_user.home + "/k", "--", "true", user=plain_user)
    assert res.rc == 125 and "needs root" in one_line_error(res)


def test_signals_are_forwarded() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        script = (
            f"trap 'echo got {sig.name}; exit 3' {sig.name[3:]}; echo ready; "
            "while :; do sleep 0.05; done"
        )
        proc = subprocess.Popen(
            _argv(("--", "sh", "-c", script), None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert out == f"got {sig.name}\n", (out, err)
        assert proc.returncode == 3, err
        assert pynsbind_cgroups(pid=proc.pid) == set()


def test_ctrl_c_twice_ends_a_sandbox_that_ignores_it() -> None:
    """A command that ignores SIGINT: the second Ctrl-C kills the sandbox, with
    no traceback and nothing left behind."""
    proc = subprocess.Popen(
        _argv(("--", "sh", "-c", "trap '' INT; echo ready; sleep 60"), None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)  # (not a measurement: the first interrupt goes first)
        assert proc.poll() is None, "one Ctrl-C ended a sandbox that ignores it"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGKILL, err
    assert "Traceback" not in err
    assert pynsbind_cgroups(pid=proc.pid) == set()


def test_timeout_kills_the_whole_sandbox(tmp_path: Path) -> None:
    """Every process of the sandbox ends at the timeout, not only the command:
    a background child that would write to a volume later never does."""
    d = tmp_path / "v"
    d.mkdir()
    os.chmod(tmp_path, 0o755)
    status = tmp_path / "status.json"
    res = sbx(
        "-v",
        f"{d}:/tmp/v",
        "--timeout",
        "1",
        "--json-status",
        str(status),
        "--",
        "sh",
        "-c",
        "(sleep 2; echo late > /tmp/v/late) & sleep 30",
    )
    assert res.rc == 124, res
    assert "timed out after 1 seconds" in one_line_error(res)
    assert json.loads(status.read_text())["timed_out"] is True
    time.sleep(2.5)  # (not a measurement: past the moment the child would write)
    assert not (d / "late").exists(), "a process of the sandbox outlived the timeout"


def test_interactive_keeps_stdin() -> None:
    assert sbx("-i", "--", "cat", input="typed\n").out == "typed\n"
    assert sbx("--", "cat", input="typed\n").out == ""  # stdin is /dev/null without -i


def test_help_is_grouped_with_examples() -> None:
    res = subprocess.run(
        [PY, "-m", "pynsbind", "sandbox", "--help"], capture_output=True, text=True
    )
    assert res.returncode == 0
    for group in ("filesystem:", "process:", "limits:", "security:", "network:", "examples:"):
        assert group in res.stdout
    for option in ("-v, --volume", "--writable", "--cpus", "--security-opt", "--json-status"):
        assert option in res.stdout
    top = subprocess.run([PY, "-m", "pynsbind", "--help"], capture_output=True, text=True)
    assert "sandbox" in top.stdout


def test_debug_prints_the_plan() -> None:
    res = sbx("--debug", "--", "true")
    assert res.rc == 0
    assert "EXEC" in res.err and "SETATTR" in res.err


def test_the_python_twin(host_dir: Path) -> None:
    (host_dir / "f").write_text("api\n")
    res = pynsbind.sandbox(
        ["sh", "-c", "cat /mnt/f; hostname; echo $X"],
        volumes=[f"{host_dir}:/mnt:ro"],
        env={"X": "y"},
        hostname="twin",
        capture_output=True,
        text=True,
    )
    assert isinstance(res, pynsbind.CompletedContainer)
    assert res.returncode == 0 and res.stdout == "api\ntwin\ny\n", res
    assert res.status is not None and res.status.exit_code == 0
    late = pynsbind.sandbox(["sleep", "30"], timeout=0.5)
    assert late.status is not None and late.status.timed_out and late.status.returncode == 124
    with pytest.raises(pynsbind.SpecError, match="--cpus"):
        pynsbind.sandbox(["true"], cpus="lots")


def test_tty_through_a_real_terminal() -> None:
    """-it in a terminal (pexpect's pty): the sandbox has a terminal of its own,
    of the caller's window size, which follows a resize (SIGWINCH); the caller's
    terminal is raw meanwhile (^C reaches the sandbox's foreground job, not
    pynsbind-run), and as it was afterwards; the exit status is the command's."""
    pexpect = pytest.importorskip("pexpect")
    argv = " ".join(_argv(("-it", "--", "sh"), None))
    script = f"stty -g; {argv}; echo status $?; stty -g"
    child = pexpect.spawn("sh", ["-c", script], dimensions=(30, 90), encoding="utf-8", timeout=60)
    try:
        before = child.readline().strip()
        child.expect("# ")
        child.sendline("tty; stty size")
        child.expect(r"/dev/pts/\d+\r\n30 90\r\n")
        child.setwinsize(40, 120)
        child.sendline("stty size")
        child.expect("40 120")
        child.sendline("sleep 60")
        time.sleep(0.5)  # (not a measurement: sleep is running)
        child.sendcontrol("c")
        child.sendline("echo interrupted $?")
        child.expect("interrupted 130")
        child.sendline("exit 3")
        child.expect("status 3")
        after = child.readline().strip() or child.readline().strip()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert before and after == before, "the caller's terminal was not given back as it was"


def test_tty_without_interactive_is_output_only() -> None:
    res = sbx("-t", "--", "sh", "-c", "tty; echo out", input="ignored\n")
    assert res.rc == 0, res
    lines = res.out.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1] == "out", res
