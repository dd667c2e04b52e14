"""A wiretap for one mutual-TLS link of the sync protocol, for the privacy tests: what crosses
node -> hub and hub -> federal, decoded with the schema. The links are TLS, so a byte-level
proxy (faultproxy.py) sees nothing: the tap terminates TLS instead. It holds the test PKI's
keys, as any holder of those keys could: towards the client it presents the server's own
certificate (province-N for a node, federal for a hub) and asks for the client's; towards the
server it presents the client's own certificate (municipality-C, province-N). Every frame in
either direction is forwarded unchanged and kept.

    tap = TlsTap(pki, server_stem="province-1", client_stem="municipality-10703",
                 upstream=("127.0.0.1", hub.sync_port)).start()
    ... the node's hub address is 127.0.0.1:<tap.port> ...
    tap.frames("up")    # every Envelope the client sent, as bytes, in order
"""
import socket
import ssl
import struct
import threading


class TlsTap:
    def __init__(self, pki, server_stem, client_stem, upstream):
        self.upstream = upstream
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.server_ctx.load_cert_chain(pki.path(server_stem + ".crt"),
                                        pki.path(server_stem + ".key"))
        self.server_ctx.load_verify_locations(pki.path("ca.crt"))
        self.server_ctx.verify_mode = ssl.CERT_REQUIRED
        self.client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.client_ctx.load_verify_locations(pki.path("ca.crt"))
        self.client_ctx.check_hostname = False
        self.client_ctx.load_cert_chain(pki.path(client_stem + ".crt"),
                                        pki.path(client_stem + ".key"))
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.sync_port = self.port  # so that a tap can stand where a Hub is expected
        self.lock = threading.Lock()
        self.kept = []  # (direction, frame bytes) in arrival order
        self.sessions = 0
        self.closed = False

    def start(self):
        threading.Thread(target=self._accept, daemon=True, name="tlstap-accept").start()
        return self

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass

    def frames(self, direction):
        """The frames seen so far in one direction: "up" (client -> server) or "down"."""
        with self.lock:
            return [f for d, f in self.kept if d == direction]

    def _accept(self):
        while not self.closed:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(raw,), daemon=True,
                             name="tlstap-session").start()

    def _session(self, raw):
        client = server = None
        try:
            raw.settimeout(30)
            client = self.server_ctx.wrap_socket(raw, server_side=True)
            up = socket.create_connection(self.upstream, timeout=30)
            server = self.client_ctx.wrap_socket(up, server_hostname="localhost")
            for s in (client, server):
                s.settimeout(None)
            with self.lock:
                self.sessions += 1
        except (OSError, ssl.SSLError):
            for s in (client, server, raw):
                _close(s)
            return
        t = threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True,
                             name="tlstap-down")
        t.start()
        self._pump(client, server, "up")
        t.join(timeout=5)

    def _pump(self, src, dst, direction):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                buf += data
                while len(buf) >= 4:
                    (n,) = struct.unpack(">I", buf[:4])
                    if len(buf) < 4 + n:
                        break
                    with self.lock:
                        self.kept.append((direction, buf[4:4 + n]))
                    buf = buf[4 + n:]
        except (OSError, ssl.SSLError):
            pass
        for s in (src, dst):
            _close(s)


def _close(s):
    if s is None:
        return
    try:
        s.close()
    except OSError:
        pass
