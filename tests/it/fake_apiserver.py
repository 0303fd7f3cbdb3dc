#!/usr/bin/env python3
"""A stand-in for the Kubernetes API server, just enough for the executor autoscaler: one
Deployment that can be read (GET) and resized by server-side apply (PATCH with
application/apply-patch+yaml). Every request is appended to --log as a JSON line, so the test
sees exactly what `medallion scheduler` sent. Requests with another verb, path, content type or
without the bearer token are answered with a Kubernetes Status error (and logged)."""

import argparse
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--namespace", default="medallion")
    p.add_argument("--deployment", default="medallion-executor")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--token", default="kube-token")
    args = p.parse_args()
    path = f"/apis/apps/v1/namespaces/{args.namespace}/deployments/{args.deployment}"
    state = {"replicas": args.replicas}

    def deployment():
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": args.deployment, "namespace": args.namespace},
            "spec": {
                "replicas": state["replicas"],
                "selector": {"matchLabels": {"app": "executor"}},
                "template": {
                    "metadata": {"labels": {"app": "executor"}},
                    "spec": {"containers": [{"name": "executor", "image": "medallion"}]},
                },
            },
        }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def status(self, code, reason):
            self.reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "message": reason, "reason": reason, "code": code})

        def record(self, body):
            url = urllib.parse.urlsplit(self.path)
            entry = {
                "method": self.command,
                "path": url.path,
                "query": dict(urllib.parse.parse_qsl(url.query)),
                "content_type": self.headers.get("content-type", ""),
                "authorization": self.headers.get("authorization", ""),
                "body": body,
            }
            with open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
            return url

        def do_GET(self):
            url = self.record(None)
            if self.headers.get("authorization") != f"Bearer {args.token}":
                return self.status(401, "Unauthorized")
            if url.path != path:
                return self.status(404, "NotFound")
            self.reply(200, deployment())

        def do_PATCH(self):
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            url = self.record(body)
            if self.headers.get("authorization") != f"Bearer {args.token}":
                return self.status(401, "Unauthorized")
            if url.path != path:
                return self.status(404, "NotFound")
            if self.headers.get("content-type") != "application/apply-patch+yaml":
                return self.status(415, "UnsupportedMediaType")
            state["replicas"] = body["spec"]["replicas"]
            self.reply(200, deployment())

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
