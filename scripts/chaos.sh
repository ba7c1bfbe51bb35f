#!/usr/bin/env bash
# The chaos trials of issue 11 under the name the issue gives them: runs scripts/chaos.py (10
# trials by default; loopback only, bounded in time) with the same arguments. It prints
# "survived N/10, identical final models N/10" and exits non-zero unless both are 10/10.
exec python3 "$(dirname "$0")/chaos.py" "$@"
