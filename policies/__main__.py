"""The policy pack the Pulumi CLI runs: `pulumi preview --policy-pack policies`.

Constructing the PolicyPack starts its gRPC Analyzer server and blocks, so
nothing else lives here; the policies are in the sibling modules.
"""

import sys
from pathlib import Path

# The CLI starts this file with the pack directory on sys.path; the policies
# import each other as the `policies` package, so its parent must be there too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies.pack import PACK_LEVEL, PACK_NAME, all_policies

PolicyPack(name=PACK_NAME, policies=all_policies(), enforcement_level=PACK_LEVEL)
