"""A small fault-injecting TCP proxy for system tests: it listens on a free loopback port
and forwards bytes blindly to an upstream HOST:PORT (the link is TLS, so it never sees
plaintext). On command it resets every connection (RST, as a dead router or a NAT table
flush would) or stalls: stops forwarding in both directions for N seconds, holding the
bytes, then resumes (a congested or black-holed link that comes back).

    proxy = FaultProxy(("127.0.0.1", hub.sync_port)).start()
    ... node config: hub = 127.0.0.1:<proxy.port> ...
    proxy.reset()       # every open connection gets a RST now
    proxy.stall(5)      # nothing moves for 5 seconds; returns at once
    proxy.close()

Run as a program (python3 faultproxy.py UPSTREAM_HOST:PORT) it prints its port and
takes commands on stdin: "reset", "stall N", "quit"."""
import socket
import struct
import sys
import threading
import time


class FaultProxy:
    def __init__(self, upstream, listen=("127.0.0.1", 0)):
        self.upstream = upstream
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(listen)
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = set()          # open (client, upstream) socket pairs
        self.halves = {}            # pair -> directions that saw an orderly end
        self.flowing = threading.Event()
        self.flowing.set()
        self.stall_until = 0.0
        self.closed = False
        self.counts = {"accepted": 0, "resets": 0, "stalls": 0, "bytes": 0}

    def start(self):
        threading.Thread(target=self._accept, daemon=True, name="faultproxy-accept").start()
        return self

    # Faults --------------------------------------------------------------------------

    def reset(self):
        """Aborts every open connection with a RST on both sides; returns how many."""
        with self.lock:
            pairs = list(self.conns)
            self.conns.clear()
            self.counts["resets"] += 1
        for a, b in pairs:
            for s in (a, b):
                _abort(s)
        return len(pairs)

    def stall(self, seconds):
        """Stops forwarding for `seconds` (bytes are held, not dropped), then resumes.
        New connections are accepted during a stall but carry nothing until it ends."""
        with self.lock:
            self.counts["stalls"] += 1
            self.stall_until = max(self.stall_until, time.time() + seconds)
            self.flowing.clear()
        t = threading.Timer(seconds, self._maybe_resume)
        t.daemon = True
        t.start()

    def _maybe_resume(self):
        with self.lock:
            if time.time() >= self.stall_until - 0.01:
                self.flowing.set()

    def open_connections(self):
        with self.lock:
            return len(self.conns)

    def close(self):
        self.closed = True
        self.flowing.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.reset()

    # Plumbing ------------------------------------------------------------------------

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError:
                _abort(client)  # upstream down: the client sees a reset, as it would
                continue
            for s in (client, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, up)
            with self.lock:
                self.conns.add(pair)
                self.counts["accepted"] += 1
            for src, dst in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True,
                                 name="faultproxy-pump").start()

    def _pump(self, pair, src, dst):
        try:
            while True:
                self.flowing.wait()
                data = src.recv(65536)
                if not data:
                    break
                # A stall that began while we were blocked in recv holds these bytes too.
                self.flowing.wait()
                dst.sendall(data)
                with self.lock:
                    self.counts["bytes"] += len(data)
            try:
                dst.shutdown(socket.SHUT_WR)  # pass the orderly close on
            except OSError:
                pass
        except OSError:
            # One side failed: drop the pair the way a broken path does.
            with self.lock:
                self.conns.discard(pair)
                self.halves.pop(pair, None)
            for s in pair:
                _abort(s)
            return
        with self.lock:
            if pair not in self.conns:
                return  # reset meanwhile
            # Both directions finished: the pair is done.
            self.halves[pair] = self.halves.get(pair, 0) + 1
            done = self.halves[pair] == 2
            if done:
                del self.halves[pair]
                self.conns.discard(pair)
        if done:
            for s in pair:
                try:
                    s.close()
                except OSError:
                    pass


def _abort(s):
    """Close with SO_LINGER 0: the kernel sends a RST instead of a FIN. shutdown(SHUT_RD)
    first wakes a pump thread blocked in recv (close alone would not, and the RST would
    wait for it) and sends nothing on the wire."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    p = FaultProxy((host, int(port))).start()
    print("port=%d" % p.port, flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "reset":
            print("reset %d" % p.reset(), flush=True)
        elif cmd[0] == "stall":
            p.stall(float(cmd[1]))
            print("stalled", flush=True)
        elif cmd[0] == "quit":
            break
    p.close()


if __name__ == "__main__":
    main()
