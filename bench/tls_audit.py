#!/usr/bin/env python3
"""TLS audit of a running demo with Debian's testssl.sh (3.0.8).

Starts the demo in a fresh DEMO_DIR (deploy/demo.sh start), then:
  - every HTTPS port scanned (federal API and the chosen hubs): testssl's default checks
    with --fast, trusting the private CA (--add-ca); pass = no finding of severity MEDIUM,
    HIGH or CRITICAL;
  - every mutual-TLS sync port scanned for protocols and ciphers only (-p -E): these ports
    require a client certificate, so testssl cannot finish its other checks (HTTP headers,
    vulnerabilities over an application session) there; pass = TLS 1.3 is the only
    protocol offered.
Stops the demo afterwards. Writes build/tls-audit.json and prints a summary.

    /usr/bin/python3 bench/tls_audit.py            # federal + hubs 1 and 2 (about 5 min)
    TLS_AUDIT_HUBS="1 2 3 4 5 6 7" /usr/bin/python3 bench/tls_audit.py   # all seven
Exit status 1 when a check fails."""
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUBS = os.environ.get("TLS_AUDIT_HUBS", "1 2").split()
PER_SCAN_TIMEOUT = int(os.environ.get("TLS_AUDIT_TIMEOUT", "300"))
BAD = ("MEDIUM", "HIGH", "CRITICAL")
PROTOCOL_IDS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3")


def testssl_bin():
    for name in ("testssl", "testssl.sh"):
        p = shutil.which(name)
        if p:
            return p
    sys.exit("testssl not found (apt-get install testssl.sh)")


def read_kv(path):
    out = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


def ini_value(path, key):
    with open(path) as f:
        for line in f:
            if line.startswith(key + " = "):
                return line.split(" = ", 1)[1].strip()
    raise KeyError(key)


def scan(tool, target, ca, checks, jsonfile, log):
    cmd = [tool, "--quiet", "--color", "0", "--warnings", "off", "--add-ca", ca,
           "--jsonfile", jsonfile] + checks + [target]
    t = time.time()
    with open(log, "w") as lf:
        try:
            r = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT,
                               timeout=PER_SCAN_TIMEOUT)
            rc = r.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    findings = []
    if os.path.exists(jsonfile) and os.path.getsize(jsonfile):
        with open(jsonfile) as f:
            findings = json.load(f)
    return {"target": target, "command": " ".join(cmd), "rc": rc,
            "seconds": round(time.time() - t, 1), "findings": findings}


def main():
    tool = testssl_bin()
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    version = re.sub(r"\x1b\[[0-9;]*m", "", version)
    version = next((ln.strip() for ln in version.splitlines() if "testssl.sh" in ln
                    and "3." in ln), version.strip()[:80])
    demo = tempfile.mkdtemp(prefix="tls-audit-demo-")
    out_dir = tempfile.mkdtemp(prefix="tls-audit-")
    env = dict(os.environ, DEMO_DIR=demo)
    results = {"testssl": version, "https": [], "sync": [], "scanned_hubs": HUBS}
    t0 = time.time()
    try:
        subprocess.run([os.path.join(ROOT, "deploy", "demo.sh"), "start"], env=env,
                       check=True, stdout=subprocess.DEVNULL, timeout=600)
        e = read_kv(os.path.join(demo, "env"))
        ca = e["CA_CERT"]
        https = [("federal", e["FEDERAL_URL"])] + [("hub-%s" % p, e["HUB_%s_URL" % p])
                                                   for p in HUBS]
        sync = [("federal", ini_value(os.path.join(demo, "federal", "federal.ini"),
                                      "sync_listen"))]
        sync += [("hub-%s" % p, ini_value(os.path.join(demo, "hub-%s" % p, "hub.ini"),
                                          "sync_listen")) for p in HUBS]
        for name, url in https:
            target = url.replace("https://", "")
            print("tls_audit: HTTPS %s %s (default checks, --fast)" % (name, target),
                  flush=True)
            r = scan(tool, target, ca, ["--fast"],
                     os.path.join(out_dir, "https-%s.json" % name),
                     os.path.join(out_dir, "https-%s.log" % name))
            r["name"] = name
            r["bad"] = [f for f in r["findings"] if f.get("severity") in BAD]
            r["by_severity"] = {}
            for f in r["findings"]:
                s = f.get("severity", "?")
                r["by_severity"][s] = r["by_severity"].get(s, 0) + 1
            results["https"].append(r)
        for name, addr in sync:
            print("tls_audit: mutual-TLS sync %s %s (-p -E)" % (name, addr), flush=True)
            r = scan(tool, addr, ca, ["-p", "-E"],
                     os.path.join(out_dir, "sync-%s.json" % name),
                     os.path.join(out_dir, "sync-%s.log" % name))
            r["name"] = name
            r["protocols"] = {f["id"]: f["finding"] for f in r["findings"]
                              if f.get("id") in PROTOCOL_IDS}
            r["offered"] = sorted(k for k, v in r["protocols"].items()
                                  if v.startswith("offered"))
            r["ciphers"] = sorted({f["finding"] for f in r["findings"]
                                   if f.get("id", "").startswith("cipher-tls")})
            results["sync"].append(r)
    finally:
        subprocess.run([os.path.join(ROOT, "deploy", "demo.sh"), "stop"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(demo, ignore_errors=True)
    results["seconds"] = round(time.time() - t0, 1)
    failures = []
    for r in results["https"]:
        if r["rc"] == "timeout" or not r["findings"]:
            failures.append("%s HTTPS scan did not complete (rc %s)" % (r["name"], r["rc"]))
        for f in r["bad"]:
            failures.append("%s HTTPS %s: %s %s" % (r["name"], f["id"], f["severity"],
                                                    f["finding"]))
    for r in results["sync"]:
        if r["offered"] != ["TLS1_3"]:
            failures.append("%s sync port offers %s (want TLS1_3 only); protocol findings %r"
                            % (r["name"], r["offered"], r["protocols"]))
    results["failures"] = failures
    results["logs"] = out_dir
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "tls-audit.json"), "w") as f:
        json.dump(results, f, indent=2)
    print("\n%s, %.0f s" % (results["testssl"], results["seconds"]))
    for r in results["https"]:
        print("HTTPS %-8s %-20s %5.0fs  %s  MEDIUM+: %d"
              % (r["name"], r["target"], r["seconds"],
                 " ".join("%s=%d" % kv for kv in sorted(r["by_severity"].items())),
                 len(r["bad"])))
        for f in r["bad"]:
            print("    %s %s: %s" % (f["severity"], f["id"], f["finding"]))
    for r in results["sync"]:
        print("sync  %-8s %-20s %5.0fs  offered: %s; ciphers: %s"
              % (r["name"], r["target"], r["seconds"], ",".join(r["offered"]) or "none",
                 "; ".join(r["ciphers"]) or "none"))
    print("details: build/tls-audit.json, testssl logs in %s" % out_dir)
    if failures:
        print("\nFAIL:\n  " + "\n  ".join(failures))
        return 1
    print("PASS: no MEDIUM+ finding on HTTPS ports; sync ports offer TLS 1.3 only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
