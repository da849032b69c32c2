"""Cross-file checks of the nis deployment files: what no vendor tool checks.

Each module holds one family of invariants and is tested on its own (deploy-checks/tests).
The files' own syntax and each vendor's rules are left to the vendors' tools, which
scripts/deploy-checks.sh runs first (hadolint, yamllint, check-jsonschema,
kubernetes-validate, checkov, promtool).
"""
