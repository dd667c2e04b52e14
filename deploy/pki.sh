#!/usr/bin/env bash
# Private PKI for the reintegration tiers: one CA, leaf certificates for the federal API,
# provincial hubs and municipal nodes, revocation and CRL renewal, the Ed25519 key pairs
# that sign national directives, and a separate name-constrained web CA whose certificates
# let office browsers reach a node's clerk API over HTTPS. Uses only the openssl CLI
# (OpenSSL 3). Every command is idempotent where that makes sense and serialised on a lock
# file in DIR, so concurrent callers (tests) do not corrupt the CA database.
set -euo pipefail

PROG=${0##*/}
CRL_URL=${PKI_CRL_URL:-http://127.0.0.1/crl}
WEB_CRL_URL=${PKI_WEB_CRL_URL:-http://127.0.0.1/web-crl}
LEAF_DAYS=825
CA_DAYS=3650
CRL_DAYS=30
ORG="Nepal Reintegration"
CA_CN="Reintegration Root CA"
WEB_CA_CN="Reintegration Office Web CA"
# The only addresses a web CA vouches for: the private IPv4 ranges and loopback, and in IPv6
# loopback and the unique local addresses. IPv6 must be listed too: a name type that the
# constraints do not mention is not constrained at all.
WEB_IP_RANGES=(10.0.0.0/255.0.0.0 172.16.0.0/255.240.0.0 192.168.0.0/255.255.0.0
    127.0.0.0/255.0.0.0 ::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff fc00::/fe00::)
# With no DNS name given, DNS names are confined to the reserved .invalid domain, which
# never resolves: without a DNS constraint the web CA could vouch for every host name.
WEB_NO_NAMES=invalid

usage() {
    cat >&2 <<EOF
usage: $PROG init DIR
       $PROG issue [--force] [--any-code] DIR IDENTITY [IDENTITY ...]
              IDENTITY is: federal | province P (1..7) | municipality CODE (5 digits, one
              of the official local level codes of nepal_local_levels.csv, unless --force
              replaces a certificate this CA issued; --any-code: any 5 digits, for tests)
       $PROG revoke DIR STEM        (STEM: federal, province-P or municipality-CODE)
       $PROG crl DIR                (regenerate DIR/crl.pem, valid $CRL_DAYS days)
       $PROG foreign DIR            (throwaway second CA and DIR/foreign/municipality-10703.*)
       $PROG web-init DIR [NAME ...]
              separate web CA for office browsers: DIR/web/web-ca.crt (what browsers import)
              and DIR/web/web-ca.key, name-constrained to the DNS NAMEs given (each with its
              subdomains) and the private addresses 10/8, 172.16/12, 192.168/16, 127/8, ::1
              and fc00::/7, so that trusting it vouches for no other site. The names cannot
              change later: one domain (e.g. reintegration.internal) covers all under it.
       $PROG web-issue [--force] [--any-code] DIR WHO NAME|ADDRESS [NAME|ADDRESS ...]
              web certificate (serverAuth, a SAN for each NAME and ADDRESS, all inside the
              web CA's constraints) of WHO: a municipality CODE's node (DIR/web/node-CODE.crt
              and .key: the node's [node] https_cert and https_key), province-P's hub (the
              officers' pages: DIR/web/province-P.*, [hub] https_cert and https_key) or
              federal (the ministry's pages: DIR/web/federal.*, [federal] https_cert and
              https_key). A valid certificate for the same names is kept unless --force.
       $PROG web-revoke DIR WHO     (revoke WHO's web certificate, regenerate the web CRL)
       $PROG web-crl DIR            (regenerate DIR/web/web-crl.pem and .crl, valid $CRL_DAYS days)
       $PROG directive-key DIR KEYID
              Ed25519 directive-signing pair: DIR/directive-KEYID.key (0600; federal-api
              [directives] private_key, with key_id = KEYID) and DIR/directive-KEYID.pub (hubs
              and nodes: [directives] keys = KEYID=DIR/directive-KEYID.pub). KEYID: 1..63 of
              A-Z a-z 0-9 _ . -; an existing pair is kept. Rotate by adding a new KEYID.
environment: PKI_GEO_CSV (the local levels' list, default nepal_local_levels.csv beside this
             script, installed, or ../data/ in the source tree)
             PKI_CRL_URL (CRL distribution point, default http://127.0.0.1/crl)
             PKI_WEB_CRL_URL (web certificates' CRL distribution point, where office browsers
             fetch web-crl.crl; default http://127.0.0.1/web-crl)
EOF
}

msg() { printf '%s: %s\n' "$PROG" "$*" >&2; }
HERE=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")" >/dev/null && pwd)
die() {
    msg "$*"
    exit 1
}

# Runs an openssl command quietly; on failure reports its last error line on one line.
ossl() {
    local out
    if ! out=$(openssl "$@" 2>&1); then
        out=$(printf '%s\n' "$out" | grep -v '^Using configuration' | grep -v '^[[:space:]]*$' |
            tail -n 1)
        die "openssl $1 failed: ${out:-no output}"
    fi
}

# The CA configuration uses paths relative to DIR; openssl ca always runs with cwd = DIR.
write_config() {
    local dir=$1 stem=${2:-ca}
    cat >"$dir/openssl.cnf" <<EOF
[ ca ]
default_ca = CA_default

[ CA_default ]
database = ./index.txt
new_certs_dir = ./newcerts
certificate = ./$stem.crt
private_key = ./$stem.key
serial = ./serial
crlnumber = ./crlnumber
default_md = sha256
default_days = $LEAF_DAYS
default_crl_days = $CRL_DAYS
policy = policy_leaf
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes
crl_extensions = crl_ext

[ policy_leaf ]
commonName = supplied
organizationName = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ req ]
distinguished_name = req_dn
prompt = no

[ req_dn ]
CN = $CA_CN

[ v3_ca ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
}

lock_dir() {
    exec 9>"$1/.lock"
    flock 9
}

require_ca() {
    local dir=$1
    [[ -f $dir/ca.crt && -f $dir/ca.key && -f $dir/index.txt ]] ||
        die "$dir: no CA here (run: $PROG init $dir)"
    [[ -f $dir/openssl.cnf ]] || write_config "$dir"
}

genkey() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1" 2>/dev/null) || die "$1: could not generate a P-256 key"
    chmod 600 "$1"
}

gen_crl() {
    local dir=$1 out=${2:-crl}
    (cd "$dir" && ossl ca -batch -config openssl.cnf -gencrl -crldays "$CRL_DAYS" -out "$out.pem.tmp")
    mv -f "$dir/$out.pem.tmp" "$dir/$out.pem"
}

cmd_init() {
    local dir=$1
    mkdir -p "$dir/newcerts"
    lock_dir "$dir"
    [[ -f $dir/openssl.cnf ]] || write_config "$dir"
    if [[ -f $dir/ca.crt && -f $dir/ca.key ]]; then
        msg "$dir: keeping existing CA"
    elif [[ -f $dir/ca.crt || -f $dir/ca.key ]]; then
        # Replacing half a CA would silently invalidate every certificate it issued.
        die "$dir: ca.crt or ca.key is missing while the other exists; restore it or remove both"
    else
        genkey "$dir/ca.key"
        (cd "$dir" && ossl req -config openssl.cnf -new -x509 -key ca.key -sha256 \
            -days "$CA_DAYS" -subj "/CN=$CA_CN/O=$ORG" -extensions v3_ca -out ca.crt)
        chmod 644 "$dir/ca.crt"
        rm -f "$dir/crl.pem"
        : >"$dir/index.txt"
        msg "$dir: created CA \"$CA_CN\""
    fi
    [[ -f $dir/index.txt ]] || : >"$dir/index.txt"
    [[ -f $dir/index.txt.attr ]] || echo "unique_subject = no" >"$dir/index.txt.attr"
    # A random first serial keeps serials unique across CAs that are recreated.
    [[ -f $dir/serial ]] || openssl rand -hex 16 >"$dir/serial"
    [[ -f $dir/crlnumber ]] || echo 1000 >"$dir/crlnumber"
    if [[ ! -f $dir/crl.pem ]]; then
        gen_crl "$dir"
        msg "$dir/crl.pem: initial CRL, valid $CRL_DAYS days"
    fi
}

# Marks DIR/STEM.crt revoked in the CA database unless it already is; does not write the CRL.
revoke_cert() {
    local dir=$1 stem=$2 reason=$3 serial
    serial=$(openssl x509 -in "$dir/$stem.crt" -noout -serial 2>/dev/null) ||
        die "$dir/$stem.crt: not a readable certificate"
    serial=${serial#serial=}
    if awk -F'\t' -v s="$serial" '$1 == "R" && toupper($4) == toupper(s) { f = 1 } END { exit !f }' \
        "$dir/index.txt"; then
        msg "$stem: serial $serial already revoked"
        return 0
    fi
    (cd "$dir" && ossl ca -batch -config openssl.cnf -revoke "$stem.crt" -crl_reason "$reason")
    msg "$stem: revoked serial $serial ($reason)"
}

# Prints the path of each DIR/STEMS[i].crt that is valid: it exists with its key, chains to
# the CA, is not revoked in the current CRL and stays valid for at least another day. Two
# openssl runs for the whole batch.
valid_certs() {
    local dir=$1 s
    local -a files=()
    [[ -f $dir/crl.pem ]] || return 0
    for s in "${STEMS[@]}"; do
        if [[ -f $dir/$s.crt && -f $dir/$s.key ]]; then files+=("$dir/$s.crt"); fi
    done
    ((${#files[@]})) || return 0
    # Valid now and not revoked; and still valid in a day (the CRL's own date aside; the CA's
    # not: a CA that expires within a day has every certificate issued again).
    comm -12 <(openssl verify -CAfile "$dir/ca.crt" -CRLfile "$dir/crl.pem" -crl_check \
        "${files[@]}" 2>/dev/null | sed -n 's/: OK$//p' | sort) \
        <(openssl verify -CAfile "$dir/ca.crt" -attime $((EPOCHSECONDS + 86400)) \
            "${files[@]}" 2>/dev/null | sed -n 's/: OK$//p' | sort)
}

# The exit trap of issue_batch: what an interrupted or failed batch leaves must not be kept
# by the next run. Before the signing, its temporary directory goes; after it, each new
# certificate not installed is revoked (its key is deleted with the directory), and when
# anything was revoked the CRL is written, so that the next run sees the old certificates
# it revoked (and may have left beside a new key) as invalid and issues them again.
issue_cleanup() {
    local rc=$? f
    trap - EXIT
    if [[ -n $ISSUE_TMP && -d $ISSUE_TMP ]]; then
        if ((ISSUE_SIGNED)); then
            for f in "$ISSUE_TMP"/new/*.crt; do
                [[ -f $f ]] || continue
                f=${f##*/}
                msg "${f%.crt}: signed but not installed; revoking it"
                # In a subshell: revoke_cert dies on failure, and this trap must go on.
                if (revoke_cert "$ISSUE_DIR" "${ISSUE_TMP##*/}/new/${f%.crt}" unspecified); then
                    SUPERSEDED=1
                fi
            done
        fi
        rm -rf "$ISSUE_TMP"
    fi
    if ((rc != 0 && SUPERSEDED)); then
        (gen_crl "$ISSUE_DIR") || msg "$ISSUE_DIR/crl.pem: could not be written; run: $PROG crl $ISSUE_DIR"
    fi
    exit "$rc"
}

# Issues a certificate for each IDENTS[i] as STEMS[i] (the caller holds the CA lock), keeping
# the valid ones unless FORCE is 1. Checking them takes two openssl runs for the batch; a new
# certificate costs one run for its key and request, made in parallel over the cores, and the
# batch one signing run, so that a country's 761 certificates take seconds, not minutes. The
# old keys and certificates stay in place until the whole batch is signed.
issue_batch() {
    local dir=$1 force=$2 i f n=${#IDENTS[@]}
    local -a todo=() had=()
    local -A valid=()
    while read -r f; do valid[$f]=1; done < <(valid_certs "$dir")
    for ((i = 0; i < n; i++)); do
        if [[ -n ${valid[$dir/${STEMS[i]}.crt]:-} ]]; then
            if [[ $force == 0 ]]; then
                msg "${STEMS[i]}: keeping valid certificate"
                continue
            fi
            had+=(1) # a forced re-issue supersedes it: its key may be compromised
        else
            had+=(0)
        fi
        todo+=("$i")
    done
    ((${#todo[@]})) || return 0
    local tmp rel jobs k j s
    tmp=$(mktemp -d "$dir/.issue.XXXXXX")
    rel=${tmp##*/}
    ISSUE_DIR=$dir ISSUE_TMP=$tmp ISSUE_SIGNED=0
    trap issue_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir "$tmp/new"
    # openssl req reads no configuration but this one: an OPENSSL_CONF or system file that
    # asks for request extensions would add them (or fail beside -addext).
    printf '[ req ]\ndistinguished_name = req_dn\nprompt = no\n[ req_dn ]\n' >"$tmp/req.cnf"
    jobs=$(nproc 2>/dev/null || echo 1)
    local -a pids=()
    # Job k writes the keys and requests k, k + jobs, k + 2 jobs, ... (new/STEM.key, STEM.csr),
    # each request with its identity's subjectAltName, which the signing copies. One openssl
    # run each and no other process: a fork costs milliseconds here.
    for ((k = 0; k < jobs && k < ${#todo[@]}; k++)); do
        (
            umask 077
            for ((j = k; j < ${#todo[@]}; j += jobs)); do
                i=${todo[j]}
                openssl req -config "$tmp/req.cnf" -new -newkey EC \
                    -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout "$tmp/new/${STEMS[i]}.key" -subj "/CN=${IDENTS[i]}/O=$ORG" \
                    -addext "subjectAltName = URI:${IDENTS[i]},DNS:localhost,IP:127.0.0.1" \
                    -out "$tmp/${STEMS[i]}.csr" 2>"$tmp/err.$k" || {
                    msg "${STEMS[i]}: openssl req failed: $(grep -v '^[[:space:]]*$' \
                        "$tmp/err.$k" | tail -n 1)"
                    exit 1
                }
            done
        ) &
        pids+=($!)
    done
    local failed=0
    for k in "${pids[@]}"; do wait "$k" || failed=1; done
    ((failed == 0)) || die "could not make the keys and requests; no certificate issued"
    cat >"$tmp/ext" <<EOF
[ leaf ]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
basicConstraints = critical,CA:FALSE
crlDistributionPoints = URI:$CRL_URL
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    # The CA's configuration copies no extension from a request; this signing copies the
    # ones its extension file lacks (only the subjectAltName), from requests this run made.
    grep -q '^copy_extensions = none$' "$dir/openssl.cnf" ||
        die "$dir/openssl.cnf: no \"copy_extensions = none\" line; move it away to have it rewritten"
    sed 's/^copy_extensions = none$/copy_extensions = copy/' "$dir/openssl.cnf" >"$tmp/cnf"
    local -a csrs=() names=()
    for i in "${todo[@]}"; do
        csrs+=("$rel/${STEMS[i]}.csr")
        names+=("${STEMS[i]}")
    done
    # To standard output: with -out, openssl ca 3.0 reopens the file for each certificate and
    # keeps the last one only. It writes them in the order of the requests.
    ISSUE_SIGNED=1 # what this run signs and does not install gets revoked (issue_cleanup)
    if ! (cd "$dir" && openssl ca -batch -config "$rel/cnf" -notext -days "$LEAF_DAYS" \
        -extfile "$rel/ext" -extensions leaf -infiles "${csrs[@]}" >"$rel/all.pem" 2>"$rel/err"); then
        die "openssl ca failed: $(grep -v '^Using configuration' "$tmp/err" | grep -v '^[[:space:]]*$' |
            tail -n 1); no certificate issued"
    fi
    local count
    count=$(printf '%s\n' "${names[@]}" | awk -v d="$tmp/new" '
        /^-----BEGIN CERTIFICATE-----$/ { if ((getline s < "/dev/stdin") > 0) f = d "/" s ".crt"; n++ }
        f { print > f }
        /^-----END CERTIFICATE-----$/ { close(f); f = "" }
        END { print n + 0 }' "$tmp/all.pem")
    ((count == ${#todo[@]})) || die "openssl ca signed $count of ${#todo[@]} requests"
    # A forced re-issue supersedes a valid certificate, whose key may be compromised.
    for ((j = 0; j < ${#todo[@]}; j++)); do
        if ((had[j])); then
            revoke_cert "$dir" "${names[j]}" superseded
            SUPERSEDED=1
        fi
    done
    chmod 644 "$tmp/new/"*.crt
    # Each file by rename, each key followed by its certificate, so that a stop in between
    # leaves at most one identity with a new key beside its old certificate (revoked, or not
    # valid, so issued again next time); one process for the whole batch.
    local -a pairs=()
    for s in "${names[@]}"; do pairs+=("$tmp/new/$s.key" "$tmp/new/$s.crt"); done
    mv -f -t "$dir" "${pairs[@]}"
    for ((j = 0; j < ${#todo[@]}; j++)); do
        msg "${names[j]}: issued certificate for ${IDENTS[todo[j]]}"
    done
    rm -rf "$tmp"
    ISSUE_TMP=
    trap - EXIT INT TERM
}

# The official local level code $1 (5 digits): dies naming it when the list does not hold it
# (a typo would give a node a certificate that no hub accepts), or when no list is found.
check_code() {
    local csv=${PKI_GEO_CSV:-}
    if [[ -z $csv ]]; then
        for csv in "$HERE/nepal_local_levels.csv" "$HERE/../data/nepal_local_levels.csv" ""; do
            [[ -z $csv || -f $csv ]] && break
        done
    fi
    [[ -n $csv && -f $csv ]] ||
        die "no list of local levels to check municipality $1 against (set PKI_GEO_CSV to nepal_local_levels.csv, or pass --any-code)"
    awk -F, -v c="$1" 'NR > 1 && $5 == c { found = 1; exit } END { exit !found }' "$csv" ||
        die "municipality \"$1\": not a local level code of $csv (check the code; --any-code issues it anyway)"
}

# Splits "$@" into the flags --force and --any-code (FORCE and ANY_CODE, 0 or 1) and the rest
# (ARGS), for issue and web-issue.
split_flags() {
    FORCE=0 ANY_CODE=0 ARGS=()
    local a
    for a in "$@"; do
        case $a in
        --force) FORCE=1 ;;
        --any-code) ANY_CODE=1 ;;
        *) ARGS+=("$a") ;;
        esac
    done
}

cmd_issue() {
    split_flags "$@"
    local force=$FORCE any=$ANY_CODE args=("${ARGS[@]}")
    ((${#args[@]} >= 2)) || {
        usage
        exit 2
    }
    local dir=${args[0]}
    local -a idents=() stems=()
    local i=1 n=${#args[@]}
    # Validate every identity before issuing any, so a typo does not leave half a batch.
    while ((i < n)); do
        case ${args[i]} in
        federal)
            idents+=(federal)
            stems+=(federal)
            i=$((i + 1))
            ;;
        province)
            ((i + 1 < n)) || die "province: missing number (1..7)"
            [[ ${args[i + 1]} =~ ^[1-7]$ ]] ||
                die "province \"${args[i + 1]}\": must be a number from 1 to 7"
            idents+=("province:${args[i + 1]}")
            stems+=("province-${args[i + 1]}")
            i=$((i + 2))
            ;;
        municipality)
            ((i + 1 < n)) || die "municipality: missing code (5 digits)"
            [[ ${args[i + 1]} =~ ^[0-9]{5}$ ]] ||
                die "municipality \"${args[i + 1]}\": code must be exactly 5 digits"
            # A rotation (--force) of a certificate this CA issued needs no list: a code
            # taken out of it since (a merger) keeps its node until it is revoked.
            if ((!any)) && ! { ((force)) && [[ -f $dir/municipality-${args[i + 1]}.crt ]]; }; then
                check_code "${args[i + 1]}"
            fi
            idents+=("municipality:${args[i + 1]}")
            stems+=("municipality-${args[i + 1]}")
            i=$((i + 2))
            ;;
        *)
            die "\"${args[i]}\": not an identity (federal, province P, municipality CODE)"
            ;;
        esac
    done
    require_ca "$dir"
    lock_dir "$dir"
    # An identity named twice is issued once.
    local -A seen=()
    IDENTS=() STEMS=()
    for ((i = 0; i < ${#idents[@]}; i++)); do
        [[ -z ${seen[${stems[i]}]:-} ]] || continue
        seen[${stems[i]}]=1
        IDENTS+=("${idents[i]}")
        STEMS+=("${stems[i]}")
    done
    SUPERSEDED=0
    issue_batch "$dir" "$force"
    if ((SUPERSEDED)); then gen_crl "$dir"; fi
}

cmd_revoke() {
    local dir=$1 stem=$2
    [[ $stem =~ ^(federal|province-[1-7]|municipality-[0-9]{5})$ ]] ||
        die "\"$stem\": not a certificate name (federal, province-P, municipality-CODE)"
    require_ca "$dir"
    [[ -f $dir/$stem.crt ]] || die "$dir/$stem.crt: no such certificate"
    lock_dir "$dir"
    revoke_cert "$dir" "$stem" unspecified
    gen_crl "$dir"
    msg "$dir/crl.pem: regenerated"
}

cmd_crl() {
    local dir=$1
    require_ca "$dir"
    lock_dir "$dir"
    gen_crl "$dir"
    msg "$dir/crl.pem: regenerated, valid $CRL_DAYS days"
}

cmd_foreign() {
    local dir=$1
    mkdir -p "$dir"
    # A separate process each, so the lock on the foreign CA is independent of DIR's.
    "$0" init "$dir/foreign"
    "$0" issue "$dir/foreign" municipality 10703
}

cmd_directive_key() {
    local dir=$1 id=$2
    [[ $id =~ ^[A-Za-z0-9_.-]{1,63}$ ]] ||
        die "key id \"$id\": must be 1..63 of A-Z a-z 0-9 _ . -"
    mkdir -p "$dir"
    lock_dir "$dir"
    local key=$dir/directive-$id.key pub=$dir/directive-$id.pub
    if [[ -f $key ]]; then
        local text
        if ! text=$(openssl pkey -in "$key" -text -noout 2>/dev/null) ||
            [[ $text != "ED25519 Private-Key"* ]]; then
            die "$key: exists but is not an Ed25519 private key"
        fi
        if [[ -f $pub ]]; then
            # A public key that does not match would make every tier refuse the directives.
            [[ $(openssl pkey -in "$key" -pubout 2>/dev/null) == $(openssl pkey -pubin -in "$pub" 2>/dev/null) ]] ||
                die "$pub does not match $key; restore the right one or remove both"
            msg "directive key $id: keeping existing $key and $pub"
        else
            ossl pkey -in "$key" -pubout -out "$pub.tmp"
            mv -f "$pub.tmp" "$pub"
            chmod 644 "$pub"
            msg "directive key $id: kept $key, wrote its public key $pub"
        fi
        return 0
    fi
    # A public key without its private key: the issuer lost the key; a new pair under the
    # same id would silently differ from what the tiers already trust.
    [[ ! -f $pub ]] || die "$pub exists without $key; restore the key, or use a new key id"
    (umask 077 && openssl genpkey -algorithm ED25519 -out "$key.tmp" 2>/dev/null) ||
        die "$key: could not generate an Ed25519 key"
    chmod 600 "$key.tmp"
    ossl pkey -in "$key.tmp" -pubout -out "$pub.tmp"
    chmod 644 "$pub.tmp"
    mv -f "$key.tmp" "$key"
    mv -f "$pub.tmp" "$pub"
    msg "directive key $id: created $key (private, 0600) and $pub"
}

# --- the web CA ------------------------------------------------------------------------------
# Office browsers trust this CA, not the mutual-TLS one: ca.key vouches for the tiers'
# identities and never signs a web certificate, and the web CA can vouch only for the names
# and private addresses it was created for.

web_dir() { printf '%s/web' "$1"; }

# A host name as a web certificate may carry it: lower case letters, digits and hyphens in
# dot-separated labels; not an address, no wildcard.
valid_dns_name() {
    local n=$1 label='[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?'
    ((${#n} <= 253)) && [[ $n =~ ^$label(\.$label)*$ && ! $n =~ ^[0-9.]+$ ]]
}

# True for an IPv4 address inside 10/8, 172.16/12, 192.168/16 or 127/8 (WEB_IP_RANGES).
private_ipv4() {
    local a b c d
    [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || return 1
    a=$((10#${BASH_REMATCH[1]})) b=$((10#${BASH_REMATCH[2]}))
    c=$((10#${BASH_REMATCH[3]})) d=$((10#${BASH_REMATCH[4]}))
    ((a <= 255 && b <= 255 && c <= 255 && d <= 255)) || return 1
    ((a == 10 || a == 127 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168)))
}

# True for ::1 or an address in fc00::/7 (a first group of fcXX or fdXX); openssl checks
# the rest of the syntax when it issues.
private_ipv6() {
    [[ $1 == ::1 || $1 =~ ^f[cd][0-9a-f]{2}:[0-9a-f:]*$ ]]
}

# The DNS names DIR/web-ca.crt permits, one per line, sorted.
web_permitted_names() {
    openssl x509 -in "$1/web-ca.crt" -noout -ext nameConstraints 2>/dev/null |
        sed -n 's/^[[:space:]]*DNS:\(.*\)$/\1/p' | sort -u
}

cmd_web_init() {
    local dir=$1 n
    shift
    local -a names=()
    for n in "$@"; do
        n=${n,,}
        if [[ $n == *:* || $n =~ ^[0-9.]+$ ]]; then
            die "\"$n\": give host names only; the web CA always permits the private addresses (10/8, 172.16/12, 192.168/16, 127/8, ::1, fc00::/7) and no other"
        fi
        valid_dns_name "$n" ||
            die "\"$n\": not a host name (letters, digits, hyphens and dots; no wildcard)"
        names+=("$n")
    done
    ((${#names[@]})) || names=("$WEB_NO_NAMES")
    local want wdir
    want=$(printf '%s\n' "${names[@]}" | sort -u)
    wdir=$(web_dir "$dir")
    mkdir -p "$wdir/newcerts"
    lock_dir "$wdir"
    [[ -f $wdir/openssl.cnf ]] || write_config "$wdir" web-ca
    if [[ -f $wdir/web-ca.crt && -f $wdir/web-ca.key ]]; then
        local have
        have=$(web_permitted_names "$wdir")
        # The constraints are part of the CA certificate that every office browser imported:
        # other names need a new web CA, imported again everywhere.
        [[ $have == "$want" ]] ||
            die "$wdir: a web CA already exists, constrained to: ${have//$'\n'/ }; its names cannot change. To permit others, move $wdir away and run web-init again (every office browser must then import the new web-ca.crt, and every node needs a new web certificate)"
        msg "$wdir: keeping existing web CA (DNS names: ${have//$'\n'/ })"
        return 0
    elif [[ -f $wdir/web-ca.crt || -f $wdir/web-ca.key ]]; then
        die "$wdir: web-ca.crt or web-ca.key is missing while the other exists; restore it or remove both"
    fi
    local tmp i=0 r
    tmp=$(mktemp -d "$wdir/.init.XXXXXX")
    {
        cat "$wdir/openssl.cnf"
        cat <<EOF

[ web_ca ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
extendedKeyUsage = serverAuth
nameConstraints = critical,@web_nc
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ web_nc ]
EOF
        for n in $want; do
            echo "permitted;DNS.$i = $n"
            i=$((i + 1))
        done
        i=0
        for r in "${WEB_IP_RANGES[@]}"; do
            echo "permitted;IP.$i = $r"
            i=$((i + 1))
        done
    } >"$tmp/cnf"
    genkey "$tmp/key"
    # The creation date in the name tells an office which web CA its browsers trust.
    ossl req -config "$tmp/cnf" -new -x509 -key "$tmp/key" -sha256 -days "$CA_DAYS" \
        -subj "/CN=$WEB_CA_CN $(date -u +%Y-%m-%d)/O=$ORG" -extensions web_ca -out "$tmp/crt"
    mv -f "$tmp/key" "$wdir/web-ca.key"
    mv -f "$tmp/crt" "$wdir/web-ca.crt"
    chmod 644 "$wdir/web-ca.crt"
    rm -rf "$tmp"
    : >"$wdir/index.txt"
    echo "unique_subject = no" >"$wdir/index.txt.attr"
    openssl rand -hex 16 >"$wdir/serial"
    echo 1000 >"$wdir/crlnumber"
    msg "$wdir/web-ca.crt: created web CA for DNS names ${want//$'\n'/ } (with subdomains) and private addresses only"
    web_gen_crl "$wdir"
}

# Writes WDIR/web-crl.pem and its DER form web-crl.crl, which browsers fetch from the
# certificates' distribution point (PKI_WEB_CRL_URL).
web_gen_crl() {
    local wdir=$1
    [[ -f $wdir/crlnumber ]] || echo 1000 >"$wdir/crlnumber"
    gen_crl "$wdir" web-crl
    ossl crl -in "$wdir/web-crl.pem" -outform DER -out "$wdir/web-crl.crl.tmp"
    mv -f "$wdir/web-crl.crl.tmp" "$wdir/web-crl.crl"
    chmod 644 "$wdir/web-crl.pem" "$wdir/web-crl.crl"
    msg "$wdir/web-crl.pem, web-crl.crl: web CRL, valid $CRL_DAYS days; publish web-crl.crl at the web certificates' distribution point (PKI_WEB_CRL_URL when issued)"
}

# True when WDIR/STEM.crt exists with its key, verifies against the web CA (constraints
# included), is not revoked and stays valid for at least another day.
web_cert_is_valid() {
    local wdir=$1 stem=$2
    [[ -f $wdir/$stem.crt && -f $wdir/$stem.key && -f $wdir/web-crl.pem ]] || return 1
    openssl x509 -in "$wdir/$stem.crt" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl verify -CAfile "$wdir/web-ca.crt" -CRLfile "$wdir/web-crl.pem" -crl_check \
        -purpose sslserver "$wdir/$stem.crt" >/dev/null 2>&1
}

require_web_ca() {
    local wdir=$1
    [[ -f $wdir/web-ca.crt && -f $wdir/web-ca.key && -f $wdir/index.txt ]] ||
        die "$wdir: no web CA here (run: $PROG web-init ${wdir%/web} NAME ...)"
    [[ -f $wdir/openssl.cnf ]] || write_config "$wdir" web-ca
}

# The file stem of a web certificate's owner: a municipality's node (5 digits), a province's
# hub (province-P, P 1..7: the officers' pages) or the federal tier (federal: the ministry's
# pages). Dies on anything else.
web_stem() {
    case $1 in
    [0-9][0-9][0-9][0-9][0-9]) printf 'node-%s\n' "$1" ;;
    province-[1-7]) printf '%s\n' "$1" ;;
    federal) printf 'federal\n' ;;
    *) die "\"$1\": a web certificate is for a municipality (5 digits), province-P (P 1..7) or federal" ;;
    esac
}

cmd_web_issue() {
    split_flags "$@"
    local force=$FORCE any=$ANY_CODE args=("${ARGS[@]}")
    ((${#args[@]} >= 3)) || {
        usage
        exit 2
    }
    local dir=${args[0]} code=${args[1]} wdir stem
    stem=$(web_stem "$code") || exit 1
    if [[ $code =~ ^[0-9]{5}$ ]] && ((!any)); then check_code "$code"; fi
    wdir=$(web_dir "$dir")
    require_web_ca "$wdir"
    local -a permitted=() sans=()
    mapfile -t permitted < <(web_permitted_names "$wdir")
    local n p ok ndns=0 nip=0
    # Every name is checked against the constraints before anything is issued: openssl ca
    # would sign a certificate that no browser accepts.
    for n in "${args[@]:2}"; do
        n=${n,,}
        if private_ipv4 "$n" || private_ipv6 "$n"; then
            sans+=("IP.$nip = $n")
            nip=$((nip + 1))
        elif [[ $n == *:* || $n =~ ^[0-9.]+$ ]]; then
            die "\"$n\": not a private address; the web CA vouches only for 10/8, 172.16/12, 192.168/16, 127/8, ::1 and fc00::/7"
        else
            valid_dns_name "$n" ||
                die "\"$n\": not a host name (letters, digits, hyphens and dots; no wildcard)"
            ok=0
            for p in "${permitted[@]}"; do
                if [[ $n == "$p" || $n == *."$p" ]]; then ok=1; fi
            done
            ((ok)) ||
                die "\"$n\": outside the web CA's name constraints (it permits ${permitted[*]} and their subdomains, and private addresses): no certificate issued"
            sans+=("DNS.$ndns = $n")
            ndns=$((ndns + 1))
        fi
    done
    local want
    want=$(printf '%s\n' "${sans[@]#*= }" | sort -u)
    lock_dir "$wdir"
    [[ -f $wdir/web-crl.pem ]] || web_gen_crl "$wdir"
    if [[ $force == 0 && -f $wdir/$stem.names && $(cat "$wdir/$stem.names") == "$want" ]] &&
        web_cert_is_valid "$wdir" "$stem"; then
        msg "$stem: keeping valid web certificate for ${want//$'\n'/ }"
        return 0
    fi
    local tmp rel out
    tmp=$(mktemp -d "$wdir/.issue.XXXXXX")
    rel=${tmp##*/}
    genkey "$tmp/key"
    {
        cat <<EOF
[ web_leaf ]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
basicConstraints = critical,CA:FALSE
subjectAltName = @web_san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:$WEB_CRL_URL

[ web_san ]
EOF
        printf '%s\n' "${sans[@]}"
    } >"$tmp/ext"
    # The common name has spaces so that no verifier takes it for a host name: the names are
    # the SANs, which the constraints cover.
    ossl req -new -key "$tmp/key" -subj "/CN=node $code web/O=$ORG" -out "$tmp/csr"
    (cd "$wdir" && ossl ca -batch -config openssl.cnf -notext -days "$LEAF_DAYS" \
        -extfile "$rel/ext" -extensions web_leaf -in "$rel/csr" -out "$rel/crt")
    # openssl verify applies the web CA's name constraints, as a browser does.
    if ! out=$(openssl verify -CAfile "$wdir/web-ca.crt" -purpose sslserver "$tmp/crt" 2>&1); then
        rm -rf "$tmp"
        die "$stem: the new certificate does not verify against the web CA: $(printf '%s\n' "$out" | grep -i error | head -n 1)"
    fi
    # The certificate replaced (other names, or --force after a compromise) is revoked.
    local superseded=0
    if web_cert_is_valid "$wdir" "$stem"; then
        revoke_cert "$wdir" "$stem" superseded
        superseded=1
    fi
    mv -f "$tmp/key" "$wdir/$stem.key"
    mv -f "$tmp/crt" "$wdir/$stem.crt"
    chmod 644 "$wdir/$stem.crt"
    printf '%s\n' "$want" >"$wdir/$stem.names"
    rm -rf "$tmp"
    msg "$stem: issued web certificate for ${want//$'\n'/ }: $wdir/$stem.crt and $stem.key"
    if ((superseded)); then web_gen_crl "$wdir"; fi
}

cmd_web_revoke() {
    local dir=$1 code=$2 wdir stem
    stem=$(web_stem "$code") || exit 1
    wdir=$(web_dir "$dir")
    require_web_ca "$wdir"
    [[ -f $wdir/$stem.crt ]] || die "$wdir/$stem.crt: no such certificate"
    lock_dir "$wdir"
    revoke_cert "$wdir" "$stem" unspecified
    web_gen_crl "$wdir"
}

cmd_web_crl() {
    local wdir
    wdir=$(web_dir "$1")
    require_web_ca "$wdir"
    lock_dir "$wdir"
    web_gen_crl "$wdir"
}

main() {
    (($# >= 1)) || {
        usage
        exit 2
    }
    command -v openssl >/dev/null || die "openssl: not found in PATH"
    local cmd=$1
    shift
    case $cmd in
    -h | --help | help)
        usage
        exit 0
        ;;
    init | crl | foreign)
        (($# == 1)) || {
            usage
            exit 2
        }
        "cmd_$cmd" "$1"
        ;;
    issue) cmd_issue "$@" ;;
    web-init)
        (($# >= 1)) || {
            usage
            exit 2
        }
        cmd_web_init "$@"
        ;;
    web-issue) cmd_web_issue "$@" ;;
    web-revoke)
        (($# == 2)) || {
            usage
            exit 2
        }
        cmd_web_revoke "$1" "$2"
        ;;
    web-crl)
        (($# == 1)) || {
            usage
            exit 2
        }
        cmd_web_crl "$1"
        ;;
    directive-key)
        (($# == 2)) || {
            usage
            exit 2
        }
        cmd_directive_key "$1" "$2"
        ;;
    revoke)
        (($# == 2)) || {
            usage
            exit 2
        }
        cmd_revoke "$1" "$2"
        ;;
    *)
        msg "unknown command \"$cmd\""
        usage
        exit 2
        ;;
    esac
}

main "$@"
