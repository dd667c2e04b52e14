#!/usr/bin/env python3
"""Prints the demo's table: participants held by each provincial hub, by sex, and
services delivered, read from the hubs' own stores, beside the generator's ground truth."""
import json
import os
import sqlite3
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "gen", "python"))
import reintegration_pb2 as pb  # noqa: E402

NAMES = {1: "Koshi", 2: "Madhesh", 3: "Bagmati", 4: "Gandaki", 5: "Lumbini", 6: "Karnali",
         7: "Sudurpashchim"}


def main(demo, municipalities):
    truth = {}
    for c in municipalities:
        with open(os.path.join(demo, "caseload", "%s.truth.json" % c)) as f:
            t = json.load(f)
        p = int(str(c)[0])
        agg = truth.setdefault(p, {"FEMALE": 0, "MALE": 0, "OTHER": 0, "delivered": 0})
        for k, v in t["persons_by_sex"].items():
            agg[k] += v
        agg["delivered"] += t["services_delivered"]
    print("\nParticipants registered and services delivered, as held by each provincial hub")
    print("(ground truth from the generator in brackets)\n")
    print("%-14s %9s %9s %9s %9s %11s" % ("province", "female", "male", "other", "total",
                                         "delivered"))
    tot = [0, 0, 0, 0, 0]
    for p in range(1, 8):
        db = os.path.join(demo, "hub-%d" % p, "data", "hub.db")
        got = {1: 0, 2: 0, 3: 0, "delivered": 0}
        if os.path.exists(db):
            c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
            for (body,) in c.execute("SELECT body FROM records WHERE deleted=0"):
                r = pb.Record()
                r.ParseFromString(body)
                kind = r.WhichOneof("body")
                if kind == "person":
                    got[r.person.sex] = got.get(r.person.sex, 0) + 1
                elif kind == "service" and r.service.status == pb.SERVICE_STATUS_DELIVERED:
                    got["delivered"] += 1
            c.close()
        t = truth.get(p, {"FEMALE": 0, "MALE": 0, "OTHER": 0, "delivered": 0})
        row = [got[1], got[2], got[3], got[1] + got[2] + got[3], got["delivered"]]
        exp = [t["FEMALE"], t["MALE"], t["OTHER"], t["FEMALE"] + t["MALE"] + t["OTHER"],
               t["delivered"]]
        tot = [a + b for a, b in zip(tot, row)]
        cells = ["%d%s" % (g, "" if g == e else " (%d)" % e) for g, e in zip(row, exp)]
        print("%-14s %9s %9s %9s %9s %11s" % tuple([NAMES[p]] + cells))
    print("%-14s %9d %9d %9d %9d %11d" % tuple(["Nepal"] + tot))
    print("\n(Indicators by period, age band and programme come with the hub rollups and the "
          "federal API.)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
