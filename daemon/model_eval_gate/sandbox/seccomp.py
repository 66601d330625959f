"""The seccomp filter every sandboxed run gets: no kernel keyring, no new user namespace.

bubblewrap installs a classic BPF program read from a descriptor
(`bwrap --seccomp FD`) just before it execs the sandbox's PID 1, so it binds
PID 1 and everything the model starts. The program is generated here, in
Python, from a few lines of assembly: libseccomp's Python binding is a
Debian system package (python3-seccomp) that a virtualenv does not see, and
a compiled dependency for about twenty instructions is not worth it.

What it denies, and why:

- add_key, request_key, keyctl (EPERM): the kernel keyring is per uid and
  outlives processes; without this, one run's `add_key(..., @u)` was read
  back by the next run of another model under the same uid, minutes later
  (a channel between runs). Nothing an evaluation needs uses keyrings.
- unshare and clone with CLONE_NEWUSER (EPERM): a nested user namespace
  gives the model a full capability set over new namespaces, which is kernel
  attack surface. As root no user namespace is used at all, and the
  unprivileged path already passes --disable-userns; the filter makes both
  paths equal.
- clone3 (ENOSYS): its flags sit in a struct that seccomp cannot read, so
  it cannot be checked for CLONE_NEWUSER; ENOSYS makes glibc fall back to
  clone, which is checked.
- any other architecture's system calls (the i386 `int 0x80` entry on
  x86_64) and the x32 ABI (kill the process): their numbers differ, so the
  checks above would not apply to them.

Everything else is allowed: this is a channel and attack-surface filter, not
an allow-list of what Python may do.
"""
from __future__ import annotations

import errno
import os
import platform
import struct

# <linux/filter.h>, <linux/seccomp.h>, <linux/audit.h>, <linux/sched.h>
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_CLONE_NEWUSER = 0x10000000
_X32_SYSCALL_BIT = 0x40000000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0_LOW = 0, 4, 16  # struct seccomp_data, little-endian

# Per architecture: the audit arch and the syscall numbers the filter names.
_ARCHES = {
    "x86_64": (0xC000003E, {"clone": 56, "unshare": 272, "add_key": 248, "request_key": 249, "keyctl": 250,
                            "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "unshare": 97, "add_key": 217, "request_key": 218, "keyctl": 219,
                             "clone3": 435}),
}
DENIED_KEYRING_CALLS = ("add_key", "request_key", "keyctl")


class SeccompUnsupported(RuntimeError):
    """No filter is defined for this machine's architecture."""


def _assemble(program: list[tuple]) -> bytes:
    """Instructions (op, k, jt_label, jf_label) and labels (a str) to struct sock_filter bytes."""
    positions, index = {}, 0
    for item in program:
        if isinstance(item, str):
            positions[item] = index
        else:
            index += 1
    out, index = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        op, k, jt, jf = (*item, None, None)[:4]
        offsets = []
        for label in (jt, jf):
            if label is None:
                offsets.append(0)
            else:
                offset = positions[label] - index - 1
                if not 0 <= offset <= 255:
                    raise ValueError(f"jump to {label} out of range ({offset})")
                offsets.append(offset)
        out.append(struct.pack("=HBBI", op, offsets[0], offsets[1], k & 0xFFFFFFFF))
        index += 1
    return b"".join(out)


def filter_program(machine: str | None = None) -> bytes:
    """The BPF program for `machine` (default: this one), as bwrap --seccomp reads it."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise SeccompUnsupported(
            f"no seccomp filter for architecture {machine!r} (known: {', '.join(_ARCHES)}); "
            "the sandbox refuses to run without one")
    audit_arch, numbers = _ARCHES[machine]
    program: list = [
        (_LD_W_ABS, _OFFSET_ARCH),
        (_JEQ_K, audit_arch, "native", "kill"),
        "native",
        (_LD_W_ABS, _OFFSET_NR),
    ]
    if machine == "x86_64":
        program.append((_JGE_K, _X32_SYSCALL_BIT, "kill", "not_x32"))
        program.append("not_x32")
    for name in DENIED_KEYRING_CALLS:
        program.append((_JEQ_K, numbers[name], "eperm", None))
    program += [
        (_JEQ_K, numbers["clone3"], "enosys", None),
        (_JEQ_K, numbers["unshare"], "check_flags", None),
        (_JEQ_K, numbers["clone"], "check_flags", None),
        (_RET_K, _RET_ALLOW),
        "check_flags",
        (_LD_W_ABS, _OFFSET_ARG0_LOW),
        (_JSET_K, _CLONE_NEWUSER, "eperm", None),
        (_RET_K, _RET_ALLOW),
        "eperm",
        (_RET_K, _RET_ERRNO | errno.EPERM),
        "enosys",
        (_RET_K, _RET_ERRNO | errno.ENOSYS),
        "kill",
        (_RET_K, _RET_KILL_PROCESS),
    ]
    return _assemble(program)


def filter_fd() -> int:
    """A readable descriptor holding the program (the caller passes it to bwrap and closes it)."""
    program = filter_program()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)  # a few hundred bytes: far below a pipe's buffer
    finally:
        os.close(write_end)
    return read_end
