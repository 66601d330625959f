"""No state passes from one sandbox run to the next (issue 14, item 4).

Each test plays the channel end to end: a writer run leaves a secret by
every route it can find, and a reader run (another model, the same sandbox
uid, as a daemon slot would run them) tries to read it back. Within one run
the same routes work (shown by the writer reading its own secret), so a
channel that stayed open between runs would show up here.
"""
from __future__ import annotations

import platform
import uuid

import pytest

from hostile.harness import ISOLATED_UID, TIGHT_LIMITS, make_layout, observations, require_bubblewrap
from model_eval_gate.sandbox import discard_output, run_eval_py
from model_eval_gate.sandbox.seccomp import _ARCHES

_, SYSCALLS = _ARCHES[platform.machine()]

CHANNELS = f"""
import ctypes, ctypes.util, errno, site, socket, time
libc = ctypes.CDLL(None, use_errno=True)
rt = ctypes.CDLL(ctypes.util.find_library("rt") or None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.shmat.restype = ctypes.c_void_p
rt.mq_open.restype = ctypes.c_int
SECRET = ARGS.extra[0].encode()
KEY = 0x4D454743
ADD_KEY, KEYCTL = {SYSCALLS["add_key"]}, {SYSCALLS["keyctl"]}
KEYCTL_SEARCH, KEYCTL_READ, KEY_SPEC_USER_KEYRING = 10, 11, -4
IPC_CREAT, O_CREAT, O_RDWR = 0o1000, 0o100, 0o2

def failed():
    raise OSError(ctypes.get_errno(), errno.errorcode.get(ctypes.get_errno(), "?"))

def keyring_write():
    if libc.syscall(ADD_KEY, b"user", b"meg-channel", SECRET, len(SECRET), KEY_SPEC_USER_KEYRING) < 0:
        failed()

def keyring_read():
    key = libc.syscall(KEYCTL, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", b"meg-channel", 0)
    if key < 0:
        failed()
    buffer = ctypes.create_string_buffer(256)
    size = libc.syscall(KEYCTL, KEYCTL_READ, key, buffer, 256)
    if size < 0:
        failed()
    return buffer.raw[:size].decode()

def sysv_write():
    shm = libc.shmget(KEY, 4096, IPC_CREAT | 0o666)
    if shm < 0:
        failed()
    address = libc.shmat(shm, None, 0)
    ctypes.memmove(address, SECRET, len(SECRET))

def sysv_read():
    shm = libc.shmget(KEY, 0, 0)
    if shm < 0:
        failed()
    return ctypes.string_at(libc.shmat(shm, None, 0), len(SECRET)).decode()

def mqueue_write():
    queue = rt.mq_open(b"/meg-channel", O_CREAT | O_RDWR, 0o666, None)
    if queue < 0 or rt.mq_send(queue, SECRET, len(SECRET), 0) < 0:
        failed()

def mqueue_read():
    queue = rt.mq_open(b"/meg-channel", O_RDWR)
    if queue < 0:
        failed()
    buffer = ctypes.create_string_buffer(8192)
    size = rt.mq_receive(queue, buffer, 8192, None)
    if size < 0:
        failed()
    rt.mq_send(queue, buffer.raw[:size], size, 0)  # put it back
    return buffer.raw[:size].decode()

def abstract_write():
    # A double-forked server holding an abstract socket, outliving eval.py.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind("\\0meg-channel")
            server.listen(8)
            while True:
                connection, _ = server.accept()
                connection.sendall(SECRET)
                connection.close()
        os._exit(0)
    time.sleep(0.3)

def abstract_read():
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(2)
    client.connect("\\0meg-channel")
    return client.recv(100).decode()

FILES = ["/dev/shm/meg-channel", "/tmp/meg-channel", "/meg-channel", os.path.join(sys.prefix, "meg-channel"),
         os.path.join(site.getsitepackages()[0], "meg-channel.pth"), "/model/meg-channel", "/split/meg-channel"]

def files_write():
    written = []
    for path in FILES:
        try:
            with open(path, "wb") as handle:
                handle.write(SECRET)
            written.append(path)
        except OSError:
            pass
    return ",".join(written)

def files_read():
    found = []
    for path in FILES:
        try:
            with open(path, "rb") as handle:
                found.append(path + "=" + handle.read().decode())
        except OSError:
            pass
    return ",".join(found)

CHANNELS = {{"keyring": (keyring_write, keyring_read), "sysv_shm": (sysv_write, sysv_read),
            "posix_mqueue": (mqueue_write, mqueue_read), "abstract_socket": (abstract_write, abstract_read),
            "files": (files_write, files_read)}}
"""

WRITER = CHANNELS + """
wrote = {name: attempt(write) for name, (write, _) in CHANNELS.items()}
read_back = {name: attempt(read) for name, (_, read) in CHANNELS.items()}
report(wrote=wrote, read_back=read_back)
"""

READER = CHANNELS + """
report(read={name: attempt(read) for name, (_, read) in CHANNELS.items()})
"""


@pytest.fixture(autouse=True)
def _bubblewrap_present():
    require_bubblewrap()


def _run(tmp_path, name, body, secret):
    layout = make_layout(tmp_path / name, body)
    result = run_eval_py(layout.model_dir, layout.split_dir, limits=TIGHT_LIMITS, work_dir=layout.work_dir,
                         argv_extra=(secret,), sandbox_uid=ISOLATED_UID, sandbox_gid=ISOLATED_UID)
    discard_output(result.out_dir)
    assert result.ok, result
    return observations(result)


def test_nothing_a_run_leaves_behind_reaches_the_next_run_of_the_same_uid(tmp_path):
    secret = f"CHANNEL-{uuid.uuid4().hex}"
    writer = _run(tmp_path, "writer", WRITER, secret)
    # Within one run these routes work: the test can see a channel when there is one.
    for channel in ("sysv_shm", "posix_mqueue", "abstract_socket"):
        assert writer["wrote"][channel] == "ok", (channel, writer)
        assert writer["read_back"][channel] == f"ok: {secret}", (channel, writer)
    assert writer["read_back"]["files"] == "ok: " + ",".join(f"{p}={secret}" for p in ("/tmp/meg-channel",))
    # The keyring is closed even within a run: add_key and keyctl are refused by the seccomp filter.
    assert writer["wrote"]["keyring"] == "error: PermissionError: [Errno 1] EPERM", writer
    assert writer["read_back"]["keyring"] == "error: PermissionError: [Errno 1] EPERM", writer

    reader = _run(tmp_path, "reader", READER, "unused")
    assert secret not in str(reader), reader
    for channel, outcome in reader["read"].items():
        if channel == "files":
            assert outcome == "ok: ", (channel, outcome)  # nothing found anywhere
        else:
            assert outcome.startswith("error:"), (channel, outcome)


def test_a_nested_user_namespace_cannot_be_created(tmp_path):
    body = f"""
import ctypes, errno, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def unshare(flags):
    if libc.syscall({SYSCALLS["unshare"]}, flags) != 0:
        raise OSError(ctypes.get_errno(), errno.errorcode[ctypes.get_errno()])
report(user=attempt(lambda: unshare(0x10000000)),
       user_and_mounts=attempt(lambda: unshare(0x10000000 | 0x00020000)),
       unshare_tool=attempt(lambda: subprocess.run(["unshare", "--user", "true"], check=True, capture_output=True)),
       fork_still_works=attempt(lambda: subprocess.run(["true"], check=True) and None))
"""
    seen = _run(tmp_path, "userns", body, "unused")
    assert seen["user"] == seen["user_and_mounts"] == "error: PermissionError: [Errno 1] EPERM", seen
    assert seen["unshare_tool"].startswith("error:"), seen
    assert seen["fork_still_works"] == "ok", seen
