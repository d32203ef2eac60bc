"""Run a Debian server package that cannot be installed here, in a private root.

Courier, GNU Mailutils, Exim and OpenSMTPD conflict as packages with the
installed Dovecot and Postfix, and the tests must not change the real system.
So the ``.deb`` files are fetched with ``apt-get download`` and unpacked with
``dpkg -x`` into a cache folder (:func:`unpacked_root`), and each server runs in
its own mount and pid namespace (:class:`PrivateRoot`) where writable overlays
lay the unpacked ``/usr``, ``/etc`` and ``/var`` over the real ones (the
changes land in a temporary folder), ``/run`` is a tmpfs, and ``/etc/passwd``,
``group`` and ``shadow`` carry the extra users the server needs.

Killing the namespace's first process ends every process in it, so
:meth:`NamespacedProcess.stop` leaves nothing running even when the server
daemonises or forks children into new sessions.

Typical use::

    root = unpacked_root("courier", ["courier-pop", "courier-authdaemon"])
    prv = PrivateRoot(root, work_dir, users=[system_user("courier")],
                      etc_files={"courier/pop3d": "..."})
    proc = prv.start(["/usr/sbin/couriertcpd", ...], log_path=work_dir / "log")
    proc.run(["makeuserdb"])        # a command inside the server's namespace
    proc.stop()
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import grp
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CACHE_DIR",
    "NamespacedProcess",
    "PrivateRoot",
    "PrivateRootError",
    "SystemUser",
    "sha512_crypt",
    "system_user",
    "unpacked_root",
]

CACHE_DIR = Path(os.environ.get("POP3GUI_TEST_CACHE", "/var/cache/pop3gui-tests"))
"""Where downloaded packages and unpacked roots are kept between runs."""

# Dependencies that are pulled in automatically when they are not installed:
# shared libraries and the data packages that go with them. Anything else
# (debconf, adduser, an MTA, init scripts) is left out on purpose.
_AUTO_DEPENDENCY = re.compile(r"^lib|-libs$|-common$")
_STAMP_VERSION = 1


class PrivateRootError(RuntimeError):
    """The private root cannot be prepared here; the message says how to fix it."""


# -- unpacking ---------------------------------------------------------------


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise PrivateRootError(
            "unpacking Debian packages and mounting overlays needs root: run the tests as root "
            "(e.g. `sudo bash scripts/test.sh`)"
        )
    missing = [t for t in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query", "unshare", "nsenter")
               if shutil.which(t) is None]
    if missing:
        raise PrivateRootError(
            f"{', '.join(missing)} not found: the private server roots need a Debian system with "
            "apt and util-linux (`apt-get install -y apt util-linux`)"
        )


def _run(argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        check=False, timeout=timeout,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
    )  # fmt: skip


_apt_updated = False


def _apt_update_once() -> None:
    global _apt_updated
    if not _apt_updated:
        _apt_updated = True
        _run(["apt-get", "update", "-qq"])


def _installed(package: str) -> bool:
    proc = _run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package], timeout=60)
    return proc.returncode == 0 and proc.stdout.strip() == "installed"


def _provided_by_installed(package: str) -> bool:
    """True when an installed package Provides *package* (a virtual package)."""
    proc = _run(["dpkg-query", "-W", "-f", "${db:Status-Status} ${Provides}\n"], timeout=60)
    for line in proc.stdout.splitlines():
        status, _, provides = line.partition(" ")
        if status != "installed":
            continue
        names = {p.strip().split(" ")[0].split(":")[0] for p in provides.split(",") if p.strip()}
        if package in names:
            return True
    return False


def _candidate_depends(package: str) -> list[list[str]]:
    """The Depends and Pre-Depends of *package*'s candidate, as groups of alternatives."""
    proc = _run(["apt-cache", "show", "--no-all-versions", package], timeout=120)
    if proc.returncode != 0 or not proc.stdout.strip():
        _apt_update_once()
        proc = _run(["apt-cache", "show", "--no-all-versions", package], timeout=120)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise PrivateRootError(
            f"apt-cache knows no package {package!r}: run `apt-get update` (Debian 12 sources needed)"
        )
    groups: list[list[str]] = []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(":")
        if key not in ("Depends", "Pre-Depends"):
            continue
        for group in value.split(","):
            alternatives = []
            for alt in group.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name:
                    alternatives.append(name)
            if alternatives:
                groups.append(alternatives)
    return groups


def _closure(packages: Sequence[str]) -> list[str]:
    """*packages* plus the library packages they need that are not installed."""
    wanted: list[str] = []
    queue = list(packages)
    seen: set[str] = set()
    while queue:
        package = queue.pop(0)
        if package in seen:
            continue
        seen.add(package)
        wanted.append(package)
        for alternatives in _candidate_depends(package):
            if any(a in seen or _installed(a) for a in alternatives):
                continue
            first = alternatives[0]
            if not _AUTO_DEPENDENCY.search(first) or _provided_by_installed(first):
                continue
            queue.append(first)
    return wanted


def _download(packages: Sequence[str], debs: Path) -> None:
    debs.mkdir(parents=True, exist_ok=True)
    debs.chmod(0o755)  # so apt's _apt user can write there too (no warning)
    for attempt in range(2):
        proc = _run(["apt-get", "download", *packages], cwd=debs)
        if proc.returncode == 0:
            return
        if attempt == 0 and ("Unable to locate" in proc.stderr or "no installation candidate" in proc.stderr
                             or "Can't select" in proc.stderr):
            _apt_update_once()
            continue
        raise PrivateRootError(
            f"`apt-get download {' '.join(packages)}` failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-800:]}\nfix: check the network and run `apt-get update`"
        )


def _merge_into_usr(root: Path) -> None:
    """Move what the packages put in /lib, /bin, /sbin into /usr (Debian 12 is merged-/usr)."""
    for top in ("lib", "lib64", "bin", "sbin"):
        src = root / top
        if not src.is_dir() or src.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(src):
            rel = Path(dirpath).relative_to(src)
            dest_dir = root / "usr" / top / rel
            dest_dir.mkdir(parents=True, exist_ok=True)
            for name in filenames:
                os.replace(Path(dirpath) / name, dest_dir / name)
            # os.walk lists symlinks to directories among the directories
            for name in dirnames:
                entry = Path(dirpath) / name
                if entry.is_symlink():
                    os.replace(entry, dest_dir / name)
        shutil.rmtree(src)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unpacked_root(name: str, packages: Sequence[str]) -> Path:
    """The cached root where *packages* (and the libraries they miss here) are unpacked.

    Downloaded and unpacked on first use into ``CACHE_DIR/<name>/root``, reused
    while the requested package list is the same; a file lock makes two test
    processes wait for each other. Raises :class:`PrivateRootError` with the fix
    when this cannot be done (not root, no apt, download failed).
    """
    _check_tools()
    base = CACHE_DIR / name
    root = base / "root"
    stamp = base / "stamp.json"
    request = {"version": _STAMP_VERSION, "packages": sorted(packages)}
    with _locked(base.parent / f"{name}.lock"):
        try:
            recorded = json.loads(stamp.read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded is not None and recorded.get("request") == request and root.is_dir():
            return root
        resolved = _closure(packages)
        debs = base / "debs"
        shutil.rmtree(debs, ignore_errors=True)
        _download(resolved, debs)
        fresh = Path(tempfile.mkdtemp(prefix="root.", dir=base))
        for deb in sorted(debs.glob("*.deb")):
            proc = _run(["dpkg-deb", "-x", str(deb), str(fresh)])
            if proc.returncode != 0:
                shutil.rmtree(fresh, ignore_errors=True)
                raise PrivateRootError(f"dpkg-deb -x {deb} failed: {proc.stderr.strip()}")
        _merge_into_usr(fresh)
        fresh.chmod(0o755)
        stamp.unlink(missing_ok=True)
        if root.exists():
            shutil.rmtree(root)
        os.replace(fresh, root)
        stamp.write_text(json.dumps({"request": request, "resolved": resolved}, indent=1) + "\n")
        return root


# -- users -------------------------------------------------------------------


@dataclass(frozen=True)
class SystemUser:
    """A user (with a group of the same name) added to the private passwd/group/shadow."""

    name: str
    uid: int
    gid: int
    home: str = "/nonexistent"
    shell: str = "/usr/sbin/nologin"
    password: str | None = None  # plain text; hashed into the private shadow
    own_group: bool = True  # False: *gid* is an existing group (e.g. several users sharing ``mail``)

    def passwd_line(self) -> str:
        return f"{self.name}:x:{self.uid}:{self.gid}:{self.name}:{self.home}:{self.shell}\n"

    def group_line(self) -> str:
        return f"{self.name}:x:{self.gid}:\n" if self.own_group else ""

    def shadow_line(self) -> str:
        hashed = sha512_crypt(self.password) if self.password is not None else "!"
        return f"{self.name}:{hashed}:19000:0:99999:7:::\n"


_allocated: set[int] = set()


def system_user(name: str, *, home: str = "/nonexistent", shell: str = "/usr/sbin/nologin",
                password: str | None = None) -> SystemUser:
    """A :class:`SystemUser` whose uid and gid are unused here (or the real ones if *name* exists)."""
    try:
        entry = pwd.getpwnam(name)
        return SystemUser(name, entry.pw_uid, entry.pw_gid, home, shell, password)
    except KeyError:
        pass
    taken = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()} | _allocated
    for number in range(61000, 64999):
        if number not in taken:
            _allocated.add(number)
            return SystemUser(name, number, number, home, shell, password)
    raise PrivateRootError("no free uid between 61000 and 64999")


def sha512_crypt(password: str) -> str:
    """*password* hashed for /etc/shadow and similar files (``$6$``, by openssl)."""
    proc = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise PrivateRootError(f"openssl passwd failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _with_users(real: str, lines: Iterable[str], names: set[str]) -> str:
    kept = [line for line in real.splitlines(keepends=True) if line.split(":", 1)[0] not in names]
    text = "".join(kept)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "".join(lines)


# -- namespaces ----------------------------------------------------------------


@dataclass
class PrivateRoot:
    """The file system a namespaced server sees: overlays of *root* on the real one.

    *work* receives the overlays' writable layers (so nothing real changes);
    *etc_files* (relative to /etc) and *users* are put in the /etc layer before
    the first start; *tmpfs* paths are empty tmpfs mounts; *dirs* are created
    after mounting as ``(path, uid, gid, mode)``.
    """

    root: Path
    work: Path
    users: Sequence[SystemUser] = ()
    etc_files: Mapping[str, str | bytes] = field(default_factory=dict)
    tmpfs: Sequence[str] = ("/run",)
    dirs: Sequence[tuple[str, int, int, int]] = ()
    ldconfig: bool = True
    _prepared: bool = False
    _running: NamespacedProcess | None = None

    def _layer(self, top: str) -> tuple[Path, Path]:
        return self.work / f"{top}.upper", self.work / f"{top}.work"

    def prepare(self) -> None:
        """Create the overlay layers and the private /etc files (done by the first start or run)."""
        if self._prepared:
            return
        self.work.mkdir(parents=True, exist_ok=True)
        self.work.chmod(0o755)
        for top in ("usr", "etc", "var"):
            for path in self._layer(top):
                path.mkdir(exist_ok=True)
        packaged_var = self.root / "var"
        if packaged_var.is_dir():
            # The cache lives under /var, and overlayfs refuses a lower layer
            # inside another one: the package's (small) /var goes into the upper layer.
            shutil.copytree(packaged_var, self._layer("var")[0], symlinks=True, dirs_exist_ok=True)
        etc_upper = self._layer("etc")[0]
        for rel, content in self.etc_files.items():
            target = etc_upper / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                target.write_text(content)
            else:
                target.write_bytes(content)
        if self.users:
            names = {u.name for u in self.users}
            for base, render in (("passwd", SystemUser.passwd_line), ("group", SystemUser.group_line),
                                 ("shadow", SystemUser.shadow_line)):
                real = Path("/etc", base).read_text()
                text = _with_users(real, (render(u) for u in self.users), names)
                target = etc_upper / base
                target.write_text(text)
                target.chmod(0o640 if base == "shadow" else 0o644)
                if base == "shadow":
                    shadow_gid = _gid_or_zero("shadow")
                    os.chown(target, 0, shadow_gid)
        self._prepared = True

    def _ready_marker(self) -> Path:
        """Created by the namespace's first process once the file system is set up."""
        return self.work / "mounted"

    def etc_path(self, rel: str) -> Path:
        """Where the private ``/etc/<rel>`` lives before the first start (the /etc upper layer)."""
        return self._layer("etc")[0] / rel

    def write_file(self, path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        """Write *path* as the namespace sees it (e.g. ``/etc/...``), atomically, running or not."""
        script = (
            'umask 077; tmp="$1.privroot-tmp"; cat > "$tmp" && chown "$2:$3" "$tmp" && chmod "$4" "$tmp" '
            '&& mv -f "$tmp" "$1"'
        )
        proc = self.run(["/bin/sh", "-c", script, "sh", path, str(uid), str(gid), f"{mode:o}"], input=data)
        if proc.returncode != 0:
            raise PrivateRootError(f"writing {path} failed: {proc.stderr.decode(errors='replace').strip()}")

    def _script(self, *, keep_alive: bool) -> str:
        lines = ["set -e"]
        for top in ("usr", "etc", "var"):
            lower = self.root / top
            lowers = f"{lower}:/{top}" if lower.is_dir() and top != "var" else f"/{top}"
            upper, workdir = self._layer(top)
            options = f"lowerdir={lowers},upperdir={upper},workdir={workdir}"
            lines.append(f"mount -t overlay overlay -o {shlex.quote(options)} /{top}")
        for path in self.tmpfs:
            lines.append(f"mkdir -p {shlex.quote(path)}")
            lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(path)}")
        for path, uid, gid, mode in self.dirs:
            lines.append(f"install -d -o {uid} -g {gid} -m {mode:o} {shlex.quote(path)}")
        if self.ldconfig:
            lines.append("ldconfig")
        lines.append(f": > {shlex.quote(str(self._ready_marker()))}")
        lines.append("set +e")
        # The shell stays the namespace's first process, so the server is not
        # pid 1 (which ignores signals it has no handler for, and reaps orphans).
        lines.append('"$@" &')
        lines.append("wait $!")
        lines.append("status=$?")
        if keep_alive:
            # The server daemonises: the namespace must outlive its first process.
            lines.append('[ "$status" = 0 ] && exec sleep infinity')
        lines.append('exit "$status"')
        return "\n".join(lines) + "\n"

    def _unshare(self, argv: Sequence[str], *, keep_alive: bool) -> list[str]:
        self.prepare()
        return [
            "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
            "--kill-child=SIGKILL", "--", "/bin/sh", "-c", self._script(keep_alive=keep_alive), "privroot",
            *argv,
        ]  # fmt: skip

    def start(self, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
              keep_alive: bool = False, cwd: Path | None = None) -> NamespacedProcess:
        """Start *argv* in a fresh namespace; its output goes to *log_path*.

        Use *keep_alive* when the program forks into the background and exits.
        """
        self.prepare()
        self._ready_marker().unlink(missing_ok=True)
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                self._unshare(argv, keep_alive=keep_alive),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else _default_env(), cwd=cwd, start_new_session=True,
            )  # fmt: skip
        self._running = NamespacedProcess(popen, self, log_path, keep_alive)
        return self._running

    def run(self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 60,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run *argv* in the running server's namespace, or in a one-off one if none runs."""
        running = self._running
        if running is not None and running.alive():
            return running.run(argv, input=input, timeout=timeout, env=env)
        return subprocess.run(
            self._unshare(argv, keep_alive=False), input=input, capture_output=True, timeout=timeout,
            env=dict(env) if env is not None else _default_env(), check=False,
        )  # fmt: skip


def _gid_or_zero(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return 0


def _default_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C", "HOME": "/root"}


class NamespacedProcess:
    """A program running in its own mount and pid namespace (see :meth:`PrivateRoot.start`)."""

    def __init__(self, popen: subprocess.Popen[bytes], private_root: PrivateRoot, log_path: Path,
                 keep_alive: bool = False) -> None:
        self.popen = popen
        self.keep_alive = keep_alive
        self.private_root = private_root
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """The pid of ``unshare`` (the process group leader), as seen from here."""
        return self.popen.pid

    def inner_pid(self, timeout: float = 10.0) -> int:
        """The pid (as seen from here) of the namespace's first process, once its mounts are done."""
        deadline = time.monotonic() + timeout
        path = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        while True:
            try:
                children = path.read_text().split()
            except OSError:
                children = []
            if children and self.private_root._ready_marker().exists():
                return int(children[0])
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise PrivateRootError(f"the namespaced process is not running; log:\n{self.log_tail()}")
            time.sleep(0.01)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def run(self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 60,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run *argv* inside this process's mount namespace (it sees the overlays)."""
        return subprocess.run(
            ["nsenter", "--target", str(self.inner_pid()), "--mount", "--", *argv],
            input=input, capture_output=True, timeout=timeout, check=False,
            env=dict(env) if env is not None else _default_env(),
        )  # fmt: skip

    def add_user(self, user: SystemUser) -> None:
        """Append *user* to the namespace's passwd, group and shadow while it runs."""
        script = (
            'printf "%s" "$1" >> /etc/passwd && printf "%s" "$2" >> /etc/group && '
            'printf "%s" "$3" >> /etc/shadow'
        )
        proc = self.run(["/bin/sh", "-c", script, "sh", user.passwd_line(), user.group_line(), user.shadow_line()])
        if proc.returncode != 0:
            raise PrivateRootError(f"adding user {user.name} failed: {proc.stderr.decode(errors='replace')}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every process in the namespace, then SIGKILL its first one: all of them end.

        (``unshare`` itself ignores SIGTERM while it waits, and a namespace's
        first process ignores signals it has no handler for.)
        """
        if self.popen.poll() is None:
            try:
                inner: int | None = self.inner_pid(timeout=0.5)
            except PrivateRootError:
                inner = None
            namespace = _pid_namespace(inner) if inner is not None else None
            if namespace is not None and inner is not None:
                for pid in _live_members(namespace):
                    _signal(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while self.popen.poll() is None and time.monotonic() < deadline:
                    others = [p for p in _live_members(namespace) if p != inner]
                    if self.keep_alive and not others:
                        break  # only the placeholder is left
                    time.sleep(0.02)
                _signal(inner, signal.SIGKILL)
            else:
                _signal(self.popen.pid, signal.SIGKILL)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            if namespace is not None:
                _wait_namespace_empty(namespace, 10)
        if self.private_root._running is self:
            self.private_root._running = None


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _live_members(namespace: str) -> list[int]:
    """Pids of the processes (not zombies) in the pid namespace *namespace*."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            members.append(int(entry))
    return members


def _wait_namespace_empty(namespace: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        members = _live_members(namespace)
        if not members:
            return
        if time.monotonic() > deadline:
            raise PrivateRootError(f"processes {members} of {namespace} did not end")
        for pid in members:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.02)
