"""`python -m devtools.cluster`: the several-node rehearsal (docs/deployment.md, "Several nodes").

Work in progress: the network namespaces, the load balancer and the traffic checks land in the next commits.
"""

import sys

if __name__ == "__main__":
    print(
        "cluster-rehearsal: not implemented yet (issue 11 item 6, in progress on feat/cluster).",
        file=sys.stderr,
    )
    raise SystemExit(2)
