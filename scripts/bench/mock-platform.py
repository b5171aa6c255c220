#!/usr/bin/env python3
"""A stand-in for the two Trigger.dev platform endpoints upstream's
deploy-index-controller calls during `docker build` (indexer stage), so the whole
Containerfile can be built offline:
  GET  /api/v1/projects/<ref>/envvars                 -> {"variables": {}}
  POST /api/v1/deployments/<id>/background-workers   -> {"id", "version", "contentHash"}
  POST /api/v1/deployments/<id>/fail                 -> {"id"}  (logged: indexing failed)
Usage: mock-platform.py PORTFILE LOGFILE   (binds 127.0.0.1 on a free port, writes it to PORTFILE)
"""
import json, sys, re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

portfile, logfile = sys.argv[1], sys.argv[2]
log = open(logfile, "a", buffering=1)


class H(BaseHTTPRequestHandler):
    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        log.write("%s %s\n" % (self.command, self.path))

    def do_GET(self):
        if re.fullmatch(r"/api/v1/projects/[^/]+/envvars", self.path):
            return self._send(200, {"variables": {}})
        self._send(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        m = re.fullmatch(r"/api/v1/deployments/([^/]+)/background-workers", self.path)
        if m:
            try:
                meta = json.loads(body).get("metadata", {})
                log.write("tasks: %s\n" % ",".join(t.get("id", "?") for t in meta.get("tasks", [])))
            except Exception:
                pass
            return self._send(200, {"id": "worker_bench", "version": "1", "contentHash": "bench"})
        m = re.fullmatch(r"/api/v1/deployments/([^/]+)/fail", self.path)
        if m:
            log.write("FAIL %s\n" % body[:2000].decode(errors="replace"))
            return self._send(200, {"id": m.group(1)})
        self._send(404, {"error": "not found"})


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile, "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
