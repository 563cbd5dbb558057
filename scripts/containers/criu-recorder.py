#!/usr/bin/env python3
# A criu stand-in that records the RPC requests its caller sends: `criu swrk FD` starts the
# real criu ($CKPT_REAL_CRIU) on a socket pair of its own, passes every message both ways
# (with the descriptors they carry) and writes each message from the caller into
# $CKPT_RECORD_DIR/req-N.bin, for `protoc --decode=criu_req rpc.proto`. Other commands go
# straight to the real criu. Every descriptor the caller gave keeps its number in criu.
# For comparing requests only: it is not part of ckpt.
import array, os, select, socket, subprocess, sys

real = os.environ.get("CKPT_REAL_CRIU", "/usr/local/sbin/criu")
if sys.argv[1:2] != ["swrk"]:
    os.execv(real, [real] + sys.argv[1:])
import fcntl
given = int(sys.argv[2])
outer = socket.socket(fileno=fcntl.fcntl(given, fcntl.F_DUPFD_CLOEXEC, 900))
os.close(given)
# CRIU opens the descriptors a request names (images_dir_fd, ...) in its socket peer, which is
# now this process: take the caller's at the same numbers.
ppid = os.getppid()
for name in os.listdir(f"/proc/{ppid}/fd"):
    n = int(name)
    if n <= 2 or os.path.exists(f"/proc/self/fd/{n}"):
        continue
    try:
        fd = os.open(f"/proc/{ppid}/fd/{n}", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        continue
    if fd != n:
        os.dup2(fd, n, inheritable=False)
        os.close(fd)
sys.stderr = open(os.path.join(os.environ.get("CKPT_RECORD_DIR", "."), "recorder.err"), "a")
mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
keep = [int(f) for f in os.listdir("/proc/self/fd") if int(f) > 2]
keep = [f for f in keep if f not in (mine.fileno(), outer.fileno(), sys.stderr.fileno()) and os.path.exists(f"/proc/self/fd/{f}")]
criu = subprocess.Popen([real, "swrk", str(theirs.fileno())], pass_fds=keep + [theirs.fileno()])
theirs.close()
out = os.environ.get("CKPT_RECORD_DIR", ".")
n = 0

def relay(src, dst, record):
    global n
    fds = array.array("i")
    msg, anc, _, _ = src.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
    if not msg:
        return False
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if record:
        with open(os.path.join(out, f"req-{n}.bin"), "wb") as f:
            f.write(msg)
        n += 1
    dst.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)] if fds else [])
    for fd in fds:
        os.close(fd)
    return True

try:
    while True:
        r, _, _ = select.select([outer, mine], [], [])
        if outer in r and not relay(outer, mine, True):
            break
        if mine in r and not relay(mine, outer, False):
            break
finally:
    mine.close()
    outer.close()
    sys.exit(criu.wait())
