#!/usr/bin/env bash
# The language runtime chosen by the `runtime` variable (python, nodejs or openjdk17), from the
# distribution's own packages so the baseline upgrade covers it.
set -euo pipefail

: "${GF_RUNTIME:?}" "${GF_RUNTIME_PACKAGES:?}"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # the package list is several words on purpose
apt-get -y -q install --no-install-recommends $GF_RUNTIME_PACKAGES
echo "runtime: ${GF_RUNTIME} (${GF_RUNTIME_PACKAGES})"
