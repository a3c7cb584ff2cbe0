#!/usr/bin/env bash
# stub
set -euo pipefail
