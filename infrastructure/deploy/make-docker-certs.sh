#!/usr/bin/env bash
# Certificates for the remote Docker APIs the Airflow host drives (TLS with client-certificate
# verification on port 2376). Run on an admin machine; keep ca-key.pem offline afterwards.
#
#   [AIRFLOW_HOST=airflow] bash infrastructure/deploy/make-docker-certs.sh OUT_DIR webserver0=10.0.1.10 spark=10.0.2.10
#
# Writes, for every HOST=ADDRESS (ADDRESS = the IP or DNS name in that host's DOCKER_URL_<HOST>):
#   OUT_DIR/ca.pem, OUT_DIR/ca-key.pem                  the private CA (ca-key.pem: keep offline)
#   OUT_DIR/server/<host>/{ca,server-cert,server-key}.pem  copy to <host>:/etc/docker/tls/
#   OUT_DIR/clients/<airflow>/{cert,key}.pem            the client identity of Airflow host <airflow>
#                                                        (CN=tripclick-airflow-<airflow>), made once
#   OUT_DIR/<airflow>/<host>/{ca,cert,key}.pem          copy OUT_DIR/<airflow>/ to that Airflow host's
#                                                        DOCKER_CERT_DIR (docker's own file names)
# <airflow> is AIRFLOW_HOST (default airflow). Every Airflow host gets its own client key, so replacing
# one host's key leaves the others alone; dockerd checks no revocation list, so a stolen key is refused
# only once it expires or the CA is replaced.
#
# Keys are ECDSA P-256. The CA (CA:TRUE, pathlen:0: it signs leaves only) is valid for CA_DAYS (default
# 3650) days, the leaves (CA:FALSE) for LEAF_DAYS (default 365, at most 397) days; a CA that would
# expire before a new leaf is refused. Run as root, the Airflow client files are handed to AIRFLOW_UID
# (default 10001, the Airflow image's user) with mode 0400 for the key, so the Airflow containers can
# read them and nobody else on the host can.
set -euo pipefail
LEAF_DAYS=${LEAF_DAYS:-365}
CA_DAYS=${CA_DAYS:-3650}
AIRFLOW_HOST=${AIRFLOW_HOST:-airflow}

fail() { echo "$0: $*" >&2; exit 2; }
[ $# -ge 2 ] || fail "usage: [AIRFLOW_HOST=name] $0 OUT_DIR HOST=ADDRESS [HOST=ADDRESS...]"
[[ $LEAF_DAYS =~ ^[1-9][0-9]*$ && $CA_DAYS =~ ^[1-9][0-9]*$ ]] || fail "LEAF_DAYS and CA_DAYS must be whole days"
# 397 days keeps within the 398 days browsers accept for public certificates; a short life bounds how
# long a stolen key works, since dockerd cannot be told that a certificate was revoked.
[ "$LEAF_DAYS" -le 397 ] || fail "LEAF_DAYS=$LEAF_DAYS: leaf certificates live at most 397 days"
[ "$CA_DAYS" -gt "$LEAF_DAYS" ] || fail "CA_DAYS=$CA_DAYS must exceed LEAF_DAYS=$LEAF_DAYS: the CA outlives its leaves"
[[ $AIRFLOW_HOST =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ && $AIRFLOW_HOST != server && $AIRFLOW_HOST != clients ]] ||
  fail "AIRFLOW_HOST=$AIRFLOW_HOST: a host name (letters, digits, '.', '-'), not 'server' or 'clients'"
out=$1; shift
umask 077
mkdir -p "$out"

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign CN KEY CERT EXTENSIONS: a leaf certificate for KEY signed by the CA. EC keys only sign, so
# digitalSignature is their one key usage.
sign() {
  local csr; csr=$(mktemp)
  openssl req -new -key "$2" -subj "/CN=$1" -out "$csr"
  openssl x509 -req -in "$csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -days "$LEAF_DAYS" -sha256 -out "$3" -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always" \
    "$4") 2>/dev/null
  rm -f "$csr"
}

if [ ! -f "$out/ca.pem" ]; then
  new_key "$out/ca-key.pem"
  openssl req -x509 -new -key "$out/ca-key.pem" -sha256 -days "$CA_DAYS" -subj "/CN=tripclick-docker-ca" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out "$out/ca.pem"
  echo "[certs] new CA $out/ca.pem"
elif ! openssl x509 -in "$out/ca.pem" -noout -ext basicConstraints | grep -q "pathlen:0"; then
  echo "[certs] warning: $out/ca.pem has no path length limit (an older CA): start from an empty OUT_DIR" >&2
fi
openssl x509 -in "$out/ca.pem" -noout -checkend $((LEAF_DAYS * 86400)) >/dev/null ||
  fail "$out/ca.pem expires within LEAF_DAYS=$LEAF_DAYS days: make a new CA in an empty OUT_DIR"

# The identity of this Airflow host, accepted by every Docker host's daemon; made once, so re-running
# with more Docker hosts hands them the same client certificate.
client_dir="$out/clients/$AIRFLOW_HOST"
mkdir -p "$client_dir"
if [ ! -f "$client_dir/cert.pem" ]; then
  new_key "$client_dir/key.pem"
  sign "tripclick-airflow-$AIRFLOW_HOST" "$client_dir/key.pem" "$client_dir/cert.pem" "extendedKeyUsage=clientAuth"
fi

airflow_dir="$out/$AIRFLOW_HOST"
hosts=0
for spec in "$@"; do
  host=${spec%%=*} address=${spec#*=}
  [[ -n $host && -n $address && $host != "$spec" ]] || fail "bad HOST=ADDRESS: $spec"
  if [[ $address =~ ^[0-9.]+$ || $address == *:* ]]; then san="IP:$address"; else san="DNS:$address"; fi
  server_dir="$out/server/$host"
  mkdir -p "$server_dir" "$airflow_dir/$host"
  new_key "$server_dir/server-key.pem"
  sign "$host" "$server_dir/server-key.pem" "$server_dir/server-cert.pem" \
    "subjectAltName=DNS:$host,$san
extendedKeyUsage=serverAuth"
  cp "$out/ca.pem" "$server_dir/ca.pem"
  cp "$out/ca.pem" "$client_dir/cert.pem" "$client_dir/key.pem" "$airflow_dir/$host/"
  echo "[certs] $host ($san): $server_dir, client $airflow_dir/$host"
  hosts=$((hosts + 1))
done
if [ "$(id -u)" = 0 ]; then
  chown -R "${AIRFLOW_UID:-10001}:${AIRFLOW_UID:-10001}" "$airflow_dir"
  chmod 0755 "$out" "$airflow_dir" "$airflow_dir"/*
  chmod 0444 "$airflow_dir"/*/ca.pem "$airflow_dir"/*/cert.pem
  chmod 0400 "$airflow_dir"/*/key.pem
fi
echo "[certs] done: CA + $hosts server certificates + the client certificate of $AIRFLOW_HOST in $out"
