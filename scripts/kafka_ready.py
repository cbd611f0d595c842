"""Exit 0 once Kafka answers a metadata request naming enough brokers, else 1 (after a timeout)."""

import argparse
import sys

from kafka import KafkaAdminClient
from kafka.errors import KafkaError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port] of the brokers")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")
    parser.add_argument("--brokers", type=int, default=1, help="brokers the cluster must list")
    args = parser.parse_args()
    timeout_ms = int(args.timeout * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=args.bootstrap,
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            client_id="consent-ledger-ready",
        )
        try:
            brokers = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError) as error:
        print(f"not ready: {error!r}", file=sys.stderr)
        return 1
    return 0 if len(brokers) >= args.brokers else 1


if __name__ == "__main__":
    sys.exit(main())
