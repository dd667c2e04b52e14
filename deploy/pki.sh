#!/usr/bin/env bash
# Private PKI for the reintegration tiers: one CA, leaf certificates for the federal API,
# provincial hubs and municipal nodes, revocation and CRL renewal, and the Ed25519 key pairs
# that sign national directives. Uses only the openssl CLI
# (OpenSSL 3). Every command is idempotent where that makes sense and serialised on a lock
# file in DIR, so concurrent callers (tests) do not corrupt the CA database.
set -euo pipefail

PROG=${0##*/}
CRL_URL=${PKI_CRL_URL:-http://127.0.0.1/crl}
LEAF_DAYS=825
CA_DAYS=3650
CRL_DAYS=30
ORG="Nepal Reintegration"
CA_CN="Reintegration Root CA"

usage() {
    cat >&2 <<EOF
usage: $PROG init DIR
       $PROG issue [--force] DIR IDENTITY [IDENTITY ...]
              IDENTITY is: federal | province P (1..7) | municipality CODE (5 digits)
       $PROG revoke DIR STEM        (STEM: federal, province-P or municipality-CODE)
       $PROG crl DIR                (regenerate DIR/crl.pem, valid $CRL_DAYS days)
       $PROG foreign DIR            (throwaway second CA and DIR/foreign/municipality-10703.*)
       $PROG directive-key DIR KEYID
              Ed25519 directive-signing pair: DIR/directive-KEYID.key (0600; federal-api
              [directives] private_key, with key_id = KEYID) and DIR/directive-KEYID.pub (hubs
              and nodes: [directives] keys = KEYID=DIR/directive-KEYID.pub). KEYID: 1..63 of
              A-Z a-z 0-9 _ . -; an existing pair is kept. Rotate by adding a new KEYID.
environment: PKI_CRL_URL (CRL distribution point, default http://127.0.0.1/crl)
EOF
}

msg() { printf '%s: %s\n' "$PROG" "$*" >&2; }
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
    local dir=$1
    cat >"$dir/openssl.cnf" <<EOF
[ ca ]
default_ca = CA_default

[ CA_default ]
database = ./index.txt
new_certs_dir = ./newcerts
certificate = ./ca.crt
private_key = ./ca.key
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
    local dir=$1
    (cd "$dir" && ossl ca -batch -config openssl.cnf -gencrl -crldays "$CRL_DAYS" -out crl.pem.tmp)
    mv -f "$dir/crl.pem.tmp" "$dir/crl.pem"
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

# True when DIR/STEM.crt exists with its key, chains to the CA, is not revoked in the
# current CRL and stays valid for at least another day.
cert_is_valid() {
    local dir=$1 stem=$2
    [[ -f $dir/$stem.crt && -f $dir/$stem.key && -f $dir/crl.pem ]] || return 1
    openssl x509 -in "$dir/$stem.crt" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl verify -CAfile "$dir/ca.crt" -CRLfile "$dir/crl.pem" -crl_check \
        "$dir/$stem.crt" >/dev/null 2>&1
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

issue_one() {
    local dir=$1 ident=$2 stem=$3 force=$4
    if [[ $force == 0 ]] && cert_is_valid "$dir" "$stem"; then
        msg "$stem: keeping valid certificate"
        return 0
    fi
    local tmp
    tmp=$(mktemp -d "$dir/.issue.XXXXXX")
    genkey "$tmp/key"
    cat >"$tmp/ext" <<EOF
[ leaf ]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
basicConstraints = critical,CA:FALSE
subjectAltName = URI:$ident,DNS:localhost,IP:127.0.0.1
crlDistributionPoints = URI:$CRL_URL
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    ossl req -new -key "$tmp/key" -subj "/CN=$ident/O=$ORG" -out "$tmp/csr"
    local rel=${tmp##*/}
    (cd "$dir" && ossl ca -batch -config openssl.cnf -notext -days "$LEAF_DAYS" \
        -extfile "$rel/ext" -extensions leaf -in "$rel/csr" -out "$rel/crt")
    # A forced re-issue supersedes the old certificate, which may have a compromised key.
    if [[ -f $dir/$stem.crt ]] && cert_is_valid "$dir" "$stem"; then
        revoke_cert "$dir" "$stem" superseded
        SUPERSEDED=1
    fi
    mv -f "$tmp/key" "$dir/$stem.key"
    mv -f "$tmp/crt" "$dir/$stem.crt"
    chmod 644 "$dir/$stem.crt"
    rm -rf "$tmp"
    msg "$stem: issued certificate for $ident"
}

cmd_issue() {
    local force=0 args=() a
    for a in "$@"; do
        if [[ $a == --force ]]; then force=1; else args+=("$a"); fi
    done
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
    SUPERSEDED=0
    for ((i = 0; i < ${#idents[@]}; i++)); do
        issue_one "$dir" "${idents[i]}" "${stems[i]}" "$force"
    done
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
