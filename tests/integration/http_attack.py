#!/usr/bin/python3
"""http_attack.py: hostile HTTP clients for the server's hardening tests
(test_serve_hardening.sh); each prints one JSON line. Standard library only.

  flood PORT PID N BYTES [KEY]   N parallel POST /v1/events of BYTES bytes each
                                 (raw sockets, no Expect), VmRSS of PID sampled
  idle PORT N M [KEY]            N idle connections from 127.0.0.1, then M
                                 requests from 127.0.0.2 (a new connection each)
  silent PORT SECONDS            one connection that sends nothing: how long
                                 until the server closes it
  raw PORT                       the bytes on stdin as one request: status line
"""
import json
import resource
import socket
import sys
import threading
import time


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def status_of(sock):
    """The status code of the answer on sock (0: none)."""
    data = b""
    sock.settimeout(20)
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def flood(port, pid, n, size, key):
    head = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if key:
        head += "Authorization: Bearer %s\r\n" % key
    head = (head + "Content-Length: %d\r\n\r\n" % size).encode()
    block = b"x" * (1 << 20)
    statuses, lock, peak = {}, threading.Lock(), [0]
    base = rss_kb(pid)
    go = threading.Barrier(n)

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        code = 0
        try:
            go.wait()
            s.sendall(head)
            left = size
            while left > 0:
                k = min(left, len(block))
                s.sendall(block[:k])
                left -= k
        except OSError:
            pass
        code = status_of(s)
        s.close()
        with lock:
            statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=one) for _ in range(n)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(pid))
            except OSError:
                return
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.3)  # what is still being parsed or freed
    done.set()
    sampler.join()
    print(json.dumps({"base_rss_kb": base, "peak_rss_kb": peak[0], "seconds": round(time.time() - t0, 2),
                      "statuses": {str(k): v for k, v in sorted(statuses.items())}}))


def closed(sock):
    """1 when the server has closed sock (EOF or reset waiting)."""
    sock.setblocking(False)
    try:
        return 1 if sock.recv(1, socket.MSG_PEEK) == b"" else 0
    except BlockingIOError:
        return 0
    except OSError:
        return 1


def idle(port, n, m, key):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held, refused = [], 0
    for _ in range(n):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            refused += 1
    time.sleep(0.5)
    open_before = sum(1 - closed(s) for s in held)
    req = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if key:
        req += "Authorization: Bearer %s\r\n" % key
    req = (req + "\r\n").encode()
    lat, failed = [], 0
    for _ in range(m):
        t0 = time.time()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
            s.sendall(req)
            code = status_of(s)
            s.close()
        except OSError:
            code = 0
        dt = (time.time() - t0) * 1000
        if code != 200:
            failed += 1
            dt = 5000.0
        lat.append(dt)
    lat.sort()
    for s in held:
        s.close()
    p = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)
    print(json.dumps({"held": len(held), "refused": refused, "open": open_before, "failed": failed,
                      "p50_ms": p(0.5), "p99_ms": p(0.99)}))


def silent(port, seconds):
    s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    t0 = time.time()
    try:
        gone = s.recv(1) == b""
    except socket.timeout:
        gone = False
    except OSError:
        gone = True
    print(json.dumps({"closed": gone, "after_s": round(time.time() - t0, 2)}))


def raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(sys.stdin.buffer.read())
    print(json.dumps({"status": status_of(s)}))
    s.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "flood":
        flood(int(a[1]), int(a[2]), int(a[3]), int(a[4]), a[5] if len(a) > 5 else "")
    elif a[0] == "idle":
        idle(int(a[1]), int(a[2]), int(a[3]), a[4] if len(a) > 4 else "")
    elif a[0] == "silent":
        silent(int(a[1]), float(a[2]))
    elif a[0] == "raw":
        raw(int(a[1]))
    else:
        sys.exit("usage: see the comment at the top")
