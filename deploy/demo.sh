#!/usr/bin/env bash
# The demo topology on loopback: a private CA, the 7 provincial hubs, and municipal nodes
# for a set of real local levels, each fed a generated caseload through the real import
# path and synced over mutual TLS. `deploy/demo.sh start` is what `make demo` runs (safe to
# run twice); `deploy/demo.sh stop` stops everything. State lives in var/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${DEMO_DIR:-$ROOT/var/demo}
BIN=$ROOT/build/bin
PY=/usr/bin/python3
# Dhankuta, Arjundhara (Koshi), and one local level in every other province.
MUNICIPALITIES=(10703 10401 21710 32706 44004 54901 65903 77104)

say() { printf '%s\n' "demo: $*" >&2; }

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

province_of() { echo "${1:0:1}"; }

stop() {
    if [ -d "$DEMO/pids" ]; then
        for f in "$DEMO"/pids/*; do
            [ -e "$f" ] || continue
            pid=$(cat "$f")
            if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
        done
        for f in "$DEMO"/pids/*; do
            [ -e "$f" ] || continue
            pid=$(cat "$f")
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$f"
        done
    fi
    say "stopped"
}

# Starts a daemon in its own session; waits for its "ready" line.
launch() {
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$DEMO/run/$name.out" 2>>"$log" </dev/null &
    echo $! >"$DEMO/pids/$name"
    for _ in $(seq 100); do
        grep -q '^ready' "$DEMO/run/$name.out" 2>/dev/null && return 0
        kill -0 "$(cat "$DEMO/pids/$name")" 2>/dev/null || break
        sleep 0.1
    done
    say "$name did not start; its log:"
    tail -20 "$log" >&2
    return 1
}

start() {
    [ -x "$BIN/provincial-hub" ] || { say "build first: make"; exit 1; }
    stop 2>/dev/null || true
    mkdir -p "$DEMO"/{pids,run,logs,caseload}
    # PKI (idempotent: an existing CA, certificates and directive key are kept).
    deploy/pki.sh init "$DEMO/pki" 2>/dev/null
    args=(federal)
    for p in 1 2 3 4 5 6 7; do args+=(province "$p"); done
    for c in "${MUNICIPALITIES[@]}"; do args+=(municipality "$c"); done
    deploy/pki.sh issue "$DEMO/pki" "${args[@]}" 2>/dev/null
    deploy/pki.sh directive-key "$DEMO/pki" demo-2083 2>/dev/null
    keys="demo-2083=$DEMO/pki/directive-demo-2083.pub"
    env_file=$DEMO/env.tmp
    : >"$env_file"
    echo "CA_CERT=$DEMO/pki/ca.crt" >>"$env_file"

    # PostgreSQL of its own (as the postgres user, under /tmp), then the federal API.
    conninfo=$(deploy/pg.sh start "$DEMO/pg.state")
    fdir=$DEMO/federal
    mkdir -p "$fdir"
    if [ ! -f "$fdir/federal.ini" ]; then
        cat >"$fdir/federal.ini" <<EOF
[federal]
sync_listen = 127.0.0.1:$(free_port)
https_listen = 127.0.0.1:$(free_port)
http_listen = 127.0.0.1:$(free_port)
pg = $conninfo
migrations = $ROOT/federal-api/migrations
[tls]
ca = $DEMO/pki/ca.crt
cert = $DEMO/pki/federal.crt
key = $DEMO/pki/federal.key
crl = $DEMO/pki/crl.pem
[directives]
key_id = demo-2083
private_key = $DEMO/pki/directive-demo-2083.key
EOF
    fi
    sed -i "s|^pg = .*|pg = $conninfo|" "$fdir/federal.ini"
    "$BIN/federal-api" --config "$fdir/federal.ini" migrate >/dev/null
    stamp=$(date +%s)
    tok_ministry=$("$BIN/federal-api" --config "$fdir/federal.ini" token create --role ministry "demo-ministry-$stamp")
    tok_public=$("$BIN/federal-api" --config "$fdir/federal.ini" token create --role public "demo-public-$stamp")
    tok_admin=$("$BIN/federal-api" --config "$fdir/federal.ini" token create --role admin "demo-admin-$stamp")
    launch federal "$DEMO/logs/federal.log" "$BIN/federal-api" --config "$fdir/federal.ini" serve
    fed_sync=$(sed -n 's/^sync_listen = //p' "$fdir/federal.ini")
    fed_https=$(sed -n 's/^https_listen = //p' "$fdir/federal.ini")
    {
        echo "FEDERAL_URL=https://$fed_https"
        echo "FEDERAL_TOKEN=$tok_ministry"
        echo "FEDERAL_PUBLIC_TOKEN=$tok_public"
        echo "FEDERAL_ADMIN_TOKEN=$tok_admin"
    } >>"$env_file"
    say "PostgreSQL and the federal API up"

    # The 7 hubs keep their ports across runs so that nodes' configs stay valid.
    for p in 1 2 3 4 5 6 7; do
        dir=$DEMO/hub-$p
        mkdir -p "$dir"
        if ! grep -q "^\[uplink\]" "$dir/hub.ini" 2>/dev/null; then
            cat >"$dir/hub.ini" <<EOF
[hub]
province = $p
data_dir = $dir/data
sync_listen = 127.0.0.1:$(free_port)
http_listen = 127.0.0.1:$(free_port)
https_listen = 127.0.0.1:$(free_port)
tokens = $dir/tokens
[tls]
ca = $DEMO/pki/ca.crt
cert = $DEMO/pki/province-$p.crt
key = $DEMO/pki/province-$p.key
crl = $DEMO/pki/crl.pem
[uplink]
federal = $fed_sync
[directives]
keys = $keys
EOF
            "$BIN/provincial-hub" --config "$dir/hub.ini" token demo-officer >"$dir/token"
            "$BIN/provincial-hub" --config "$dir/hub.ini" token demo-reviewer --role reviewer \
                >"$dir/reviewer-token"
        fi
        launch "hub-$p" "$DEMO/logs/hub-$p.log" "$BIN/provincial-hub" --config "$dir/hub.ini"
        https=$(sed -n 's/^https_listen = //p' "$dir/hub.ini")
        echo "HUB_${p}_URL=https://$https" >>"$env_file"
        echo "HUB_${p}_TOKEN=$(cat "$dir/token")" >>"$env_file"
        echo "HUB_${p}_REVIEWER_TOKEN=$(cat "$dir/reviewer-token")" >>"$env_file"
    done
    say "7 provincial hubs up"
    for c in "${MUNICIPALITIES[@]}"; do
        p=$(province_of "$c")
        dir=$DEMO/node-$c
        sync=$(sed -n 's/^sync_listen = //p' "$DEMO/hub-$p/hub.ini")
        if [ ! -f "$dir/node.ini" ]; then
            "$BIN/municipal-node" init --municipality "$c" --dir "$dir" --hub "$sync" \
                --pki "$DEMO/pki" --http-listen "127.0.0.1:$(free_port)" >/dev/null
            sed -i "s|^tokens = .*|tokens = $dir/tokens|; s|^keys = .*|keys = $keys|" "$dir/node.ini"
            "$BIN/municipal-node" --config "$dir/node.ini" token demo-clerk >"$dir/token"
        fi
        out=$DEMO/caseload/$c
        # Dhankuta's clerk always has a month returned, so that every demo shows the review.
        ret=""
        [ "$c" = 10703 ] && ret=--return-a-month
        "$PY" tools/caseload.py --municipality "$c" --size auto $ret \
            --seed "$c" --out "$out" >"$out.truth.json"
        for kind in persons services enterprises; do
            "$BIN/municipal-node" --config "$dir/node.ini" import --kind $kind "$out/$kind.csv" >/dev/null
        done
        # The clerk has closed the last six ended months (the reviewers' queue; some are
        # returned by deploy/demo_report.py).
        for month in $("$PY" -c 'import json,sys; print(" ".join(m[2:] for m in json.load(open(sys.argv[1]))["months_to_close"]))' "$out.truth.json"); do
            "$BIN/municipal-node" --config "$dir/node.ini" close-month "$month" >/dev/null
        done
        launch "node-$c" "$DEMO/logs/node-$c.log" "$BIN/municipal-node" --config "$dir/node.ini" serve
        http=$(sed -n 's/^http_listen = //p' "$dir/node.ini")
        {
            echo "NODE_${c}_URL=http://$http"
            echo "NODE_${c}_TOKEN=$(cat "$dir/token")"
            echo "NODE_${c}_CONFIG=$dir/node.ini"
        } >>"$env_file"
    done
    mv "$env_file" "$DEMO/env"
    say "${#MUNICIPALITIES[@]} municipal nodes up, caseloads imported through the real import path"
    say "waiting until the federal API shows every record (nodes -> hubs -> rollups -> federal)"
    "$PY" deploy/demo_report.py "$DEMO" "${MUNICIPALITIES[@]}"
    # The pages, with what signs in to them (an attack on the demo, as a clerk, found neither
    # the workspace's address nor how to sign in, and set a password by hand).
    local node_url node_token
    node_url=$(sed -n 's/^NODE_10703_URL=//p' "$DEMO/env")
    node_token=$(sed -n 's/^NODE_10703_TOKEN=//p' "$DEMO/env")
    cat <<EOF

In a browser:
  the clerk's workspace of Dhankuta (10703): $node_url/
      sign in with the token  $node_token
      (or set demo-clerk a password: build/bin/municipal-node --config
      \$NODE_10703_CONFIG password demo-clerk)
  the provincial and national dashboards are on the hubs' and federal's HTTPS addresses
  in var/demo/env (HUB_1_URL, FEDERAL_URL), under the demo's own CA (\$CA_CERT)

Next:
  source var/demo/env                       # URLs, tokens and configs of every process
  build/bin/municipal-node --config \$NODE_10703_CONFIG status
  curl -s --cacert \$CA_CERT -H "Authorization: Bearer \$FEDERAL_TOKEN" \\
      "\$FEDERAL_URL/v1/indicators/participants_registered?period=2026&by=sex"
  curl -s --cacert \$CA_CERT -H "Authorization: Bearer \$HUB_1_TOKEN" "\$HUB_1_URL/v1/gaps?format=csv" | head -4
  curl -s -H "Authorization: Bearer \$NODE_10703_TOKEN" \$NODE_10703_URL/v1/followups | head -c 400
  make demo-stop
EOF
}

case "${1:-}" in
start) start ;;
stop)
    stop
    deploy/pg.sh stop "$DEMO/pg.state" 2>/dev/null || true
    ;;
*)
    echo "usage: deploy/demo.sh start|stop" >&2
    exit 2
    ;;
esac
