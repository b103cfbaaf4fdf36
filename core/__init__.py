"""secret-manager-functions core: GitOps sync of SOPS secrets and plain configs into cloud stores.

The data flow reads from the module names:
trigger (webhook) → fetch (source, git_fetch) → discover → decrypt (sops) → parse (parsers)
→ route → name (naming) → plan → apply → report.

Nothing here imports a cloud SDK at import time; each store module imports its SDK when a
client is first made, so a handler only pays for its own cloud.
"""

__version__ = "0.1.0"
