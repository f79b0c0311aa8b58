"""The several-node rehearsal (issue 11 item 6): `make cluster-rehearsal`. See docs/deployment.md."""
