#!/usr/bin/env bash
# Certificates for the remote Docker APIs the Airflow host drives (TLS with client-certificate
# verification on port 2376). Run once on an admin machine; keep ca-key.pem offline afterwards.
#
#   bash infrastructure/deploy/make-docker-certs.sh OUT_DIR webserver0=10.0.1.10 webserver1=10.0.1.11 spark=10.0.2.10
#
# Writes, for every HOST=ADDRESS (ADDRESS = the IP or DNS name in that host's DOCKER_URL_<HOST>):
#   OUT_DIR/ca.pem, OUT_DIR/ca-key.pem                  the private CA (ca-key.pem: keep offline)
#   OUT_DIR/server/<host>/{ca,server-cert,server-key}.pem  copy to <host>:/etc/docker/tls/
#   OUT_DIR/airflow/<host>/{ca,cert,key}.pem            copy OUT_DIR/airflow/ to the Airflow host's
#                                                        DOCKER_CERT_DIR (docker's own file names)
# Keys are ECDSA P-256; certificates are valid for DAYS (default 825) days. Run as root, the Airflow
# client files are handed to AIRFLOW_UID (default 10001, the Airflow image's user) with mode 0400 for
# the key, so the Airflow containers can read them and nobody else on the host can.
set -euo pipefail
DAYS=${DAYS:-825}
[ $# -ge 2 ] || { echo "usage: $0 OUT_DIR HOST=ADDRESS [HOST=ADDRESS...]" >&2; exit 2; }
out=$1; shift
umask 077
mkdir -p "$out"

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign CN KEY CERT EXTENSIONS: a certificate for KEY signed by the CA
sign() {
  local csr; csr=$(mktemp)
  openssl req -new -key "$2" -subj "/CN=$1" -out "$csr"
  openssl x509 -req -in "$csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -days "$DAYS" -sha256 -out "$3" -extfile <(printf '%s\n' "$4") 2>/dev/null
  rm -f "$csr"
}

if [ ! -f "$out/ca.pem" ]; then
  new_key "$out/ca-key.pem"
  openssl req -x509 -new -key "$out/ca-key.pem" -sha256 -days "$DAYS" -subj "/CN=tripclick-docker-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.pem"
  echo "[certs] new CA $out/ca.pem"
fi

# One client identity for Airflow, accepted by every host's daemon.
client_dir="$out/airflow-client"
mkdir -p "$client_dir"
if [ ! -f "$client_dir/cert.pem" ]; then
  new_key "$client_dir/key.pem"
  sign tripclick-airflow "$client_dir/key.pem" "$client_dir/cert.pem" \
    "keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
fi

hosts=0
for spec in "$@"; do
  host=${spec%%=*} address=${spec#*=}
  [ -n "$host" ] && [ -n "$address" ] && [ "$host" != "$spec" ] || { echo "bad HOST=ADDRESS: $spec" >&2; exit 2; }
  if [[ $address =~ ^[0-9.]+$ || $address == *:* ]]; then san="IP:$address"; else san="DNS:$address"; fi
  server_dir="$out/server/$host"
  mkdir -p "$server_dir" "$out/airflow/$host"
  new_key "$server_dir/server-key.pem"
  sign "$host" "$server_dir/server-key.pem" "$server_dir/server-cert.pem" \
    "subjectAltName=DNS:$host,$san
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
  cp "$out/ca.pem" "$server_dir/ca.pem"
  cp "$out/ca.pem" "$client_dir/cert.pem" "$client_dir/key.pem" "$out/airflow/$host/"
  echo "[certs] $host ($san): $server_dir, client $out/airflow/$host"
  hosts=$((hosts + 1))
done
if [ "$(id -u)" = 0 ]; then
  chown -R "${AIRFLOW_UID:-10001}:${AIRFLOW_UID:-10001}" "$out/airflow"
  chmod 0755 "$out" "$out/airflow" "$out"/airflow/*
  chmod 0444 "$out"/airflow/*/ca.pem "$out"/airflow/*/cert.pem
  chmod 0400 "$out"/airflow/*/key.pem
fi
echo "[certs] done: CA + $hosts server certificates + 1 client certificate in $out"
